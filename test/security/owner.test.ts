import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { sqlState } from "../../src/db/errors";
import { GRANTS_LOG } from "../../src/db/grants";
import { type EmbeddedServer, startEmbeddedServer } from "../support/embedded";
import { runHarness } from "../support/processes";

/**
 * Roles on a server of their own (PostgreSQL 18, password authentication,
 * no group roles yet), migrated by owners that are not superusers: one that
 * may not create roles, and one with CREATEROLE, as a managed database or
 * compose.yaml's owner would be. Passwords are checked for real here.
 */

let server: EmbeddedServer;
const url = (user: string, password: string, db: string) =>
  `postgres://${user}:${password}@127.0.0.1:${server.port}/${db}`;

beforeAll(async () => {
  server = await startEmbeddedServer();
  const admin = connect(server.url(), { name: "test-admin", max: 1 });
  try {
    await admin.unsafe("CREATE ROLE plain LOGIN PASSWORD 'plain-password'");
    await admin.unsafe("CREATE ROLE boss LOGIN CREATEROLE PASSWORD 'boss-password'");
    await admin.unsafe("CREATE DATABASE plain_db OWNER plain");
    await admin.unsafe("CREATE DATABASE boss_state OWNER boss");
    await admin.unsafe("CREATE DATABASE boss_data OWNER boss");
  } finally {
    await admin.end();
  }
}, 60_000);

afterAll(async () => {
  await server?.destroy();
});

/** Connects and runs one query: "ok", or the SQLSTATE it was refused with. */
async function login(u: string, query = "SELECT 1"): Promise<string> {
  const sql = connect(u, { name: "test", max: 1 });
  try {
    await sql.unsafe(query);
    return "ok";
  } catch (err) {
    return sqlState(err) ?? String(err);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const boss = {
  STATE_DATABASE_URL: "",
  DATA_DATABASE_URL: "",
};

describe("owners that are not superusers", () => {
  test("one that may not create roles: migrate works and warns once; user add says what is missing", async () => {
    const env = { DATABASE_URL: url("plain", "plain-password", "plain_db") };
    const r = await runHarness(["migrate"], env);
    expect(r.code).toBe(0);
    const warnings = r.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(warnings.map((w) => w.msg)).toEqual([GRANTS_LOG.groupsMissing]);
    const add = await runHarness(["user", "add", "--role", "worker", "w_plain"], env);
    expect(add.code).toBe(1);
    expect(add.stderr).toContain("does not exist: run harness migrate first");
  });

  test("one with CREATEROLE: two databases migrated at once both make the groups", async () => {
    boss.STATE_DATABASE_URL = url("boss", "boss-password", "boss_state");
    boss.DATA_DATABASE_URL = url("boss", "boss-password", "boss_data");
    const [a, b] = await Promise.all([
      runHarness(["migrate"], { DATABASE_URL: boss.STATE_DATABASE_URL }),
      runHarness(["migrate"], { DATABASE_URL: boss.DATA_DATABASE_URL }),
    ]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
    const again = await runHarness(["migrate"], boss);
    expect([again.code, again.stderr]).toEqual([0, ""]);
  });

  test("its users log in with their password only; rotate and remove take it away", async () => {
    const add = await runHarness(["user", "add", "--role", "sink", "s_boss"], boss);
    expect({ code: add.code, stderr: add.stderr }).toEqual({ code: 0, stderr: "" });
    const urls = Object.fromEntries(
      add.stdout
        .trim()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    const state = urls.STATE_DATABASE_URL ?? "";
    const data = urls.DATA_DATABASE_URL ?? "";
    const wrong = new URL(state);
    wrong.password = "guessed";
    expect({
      state: await login(state, "SELECT * FROM state.queue_depth('buffer_queue')"),
      data: await login(data, "SELECT count(*) FROM data.alert_events"),
      tasks: await login(state, "SELECT * FROM state.tasks"),
      wrong: await login(wrong.toString()),
    }).toEqual({ state: "ok", data: "ok", tasks: "42501", wrong: "28P01" });

    const rotated = await runHarness(["user", "add", "--role", "sink", "--rotate", "s_boss"], boss);
    expect(rotated.code).toBe(0);
    const fresh = rotated.stdout.split("\n")[0]?.replace("STATE_DATABASE_URL=", "") ?? "";
    expect({ old: await login(state), fresh: await login(fresh) }).toEqual({
      old: "28P01",
      fresh: "ok",
    });

    const removed = await runHarness(["user", "remove", "s_boss"], boss);
    expect(removed.code).toBe(0);
    expect(await login(fresh)).toBe("28P01");
  });
});
