import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { MISSING_SCHEMA } from "../../src/db/errors";
import {
  checkDatabase,
  DatabaseUnreachableError,
  MissingSchemaError,
} from "../../src/db/preflight";
import { useFreshDatabase } from "../support/db";
import { freePort } from "../support/embedded";
import { runHarness } from "../support/processes";

/**
 * What a command says about its database before it starts work: a missing
 * schema names `harness migrate`, an unreachable database is named (never
 * its password) and given up on after a short deadline, and settings from
 * `.harness/env` point at `harness up`.
 */

const db = useFreshDatabase();
const objects = mkdtempSync(join(tmpdir(), "harness-cli-objects-"));
afterAll(() => rmSync(objects, { recursive: true, force: true }));

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db().url,
  INTERNAL_AUTH_TOKEN: "cli-test-internal-token-0123456789",
  OBJECT_STORE_URL: pathToFileURL(objects).href,
  ...extra,
});

/** A TCP server that accepts connections and then does `what` with them. */
function fakeServer(what: "silent" | "close") {
  return Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        if (what === "close") socket.end();
      },
      data() {},
    },
  });
}

describe("a database that cannot be reached", () => {
  test("a one-shot command names it (not its password) in one line and exits 1", async () => {
    const url = `postgres://harness:secret-pw-123@127.0.0.1:${await freePort()}/nowhere`;
    for (const argv of [
      ["status"],
      ["task", "create", "--org", "a", "--alerts", "1"],
      ["migrate"],
    ]) {
      const r = await runHarness(argv, { DATABASE_URL: url });
      expect(r.code, argv.join(" ")).toBe(1);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines, argv.join(" ")).toHaveLength(1);
      expect(lines[0]).toContain("cannot reach the state database at 127.0.0.1:");
      expect(lines[0]).toContain("/nowhere");
      expect(lines[0]).not.toContain("secret-pw-123");
      expect(lines[0]).not.toContain("harness up");
    }
  });

  test("with the settings of .harness/env, it asks whether harness up is running", async () => {
    const url = `postgres://postgres:pw@127.0.0.1:${await freePort()}/postgres`;
    const r = await runHarness(["status"], {
      DATABASE_URL: url,
      HARNESS_UP_DIR: "/srv/x/.harness",
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(
      "is harness up running? (these settings come from /srv/x/.harness/env)",
    );
  });

  test("a server that accepts and never answers, or hangs up at once, is given up on at the deadline", async () => {
    for (const what of ["silent", "close"] as const) {
      const server = fakeServer(what);
      try {
        const url = `postgres://postgres:pw@127.0.0.1:${server.port}/postgres`;
        const check = checkDatabase(url, "state", { schema: true, timeoutMs: 300 });
        await expect(check).rejects.toBeInstanceOf(DatabaseUnreachableError);
      } finally {
        server.stop(true);
      }
    }
  });
});

describe("a database harness migrate has not made", () => {
  test("a migrated database passes the check; without its tables every command says run harness migrate", async () => {
    await checkDatabase(db().url, "state", { schema: true, timeoutMs: 3000 });
    await checkDatabase(db().url, "data", { schema: true, timeoutMs: 3000 });
    await db().sql`DROP SCHEMA state CASCADE`;
    await db().sql`DROP SCHEMA data CASCADE`;
    const check = checkDatabase(db().url, "state", { schema: true, timeoutMs: 3000 });
    await expect(check).rejects.toBeInstanceOf(MissingSchemaError);
    const port = String(await freePort());
    const commands = [
      ["dispatcher", "--port", port],
      ["worker", "--until-idle"],
      ["sink", "--until-idle"],
      ["task", "create", "--org", "acme", "--alerts", "1"],
      ["status"],
      ["dlq", "list"],
      ["dlq", "redrive"],
      ["verify", "--tasks", "1"],
    ];
    const results = await Promise.all(commands.map((argv) => runHarness(argv, env())));
    results.forEach((r, i) => {
      const name = commands[i]?.join(" ");
      expect({ name, code: r.code }).toEqual({ name, code: 1 });
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toContain(MISSING_SCHEMA);
    });
    // migrate itself needs no schema: it makes it.
    const migrate = await runHarness(["migrate"], env());
    expect(migrate.code, migrate.stderr).toBe(0);
  }, 60_000);
});
