import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { MISSING_SCHEMA } from "../../src/db/errors";
import { testServer, useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { goodLines, jsonl, publishBatchMessage, putBatch, useTempStore } from "./helpers";

/**
 * `sink --until-idle` never hangs: a schema missing from either database
 * ends it at once with exit 1 and one line saying to migrate (the batch is
 * left on its queue, not dead-lettered by a loop of retries).
 */

const db = useFreshDatabase();
const store = useTempStore();
let unmigrated = "";

const lastLine = (stderr: string) => stderr.trimEnd().split("\n").at(-1) ?? "";

beforeAll(async () => {
  const { admin } = await testServer();
  const name = `harness_unmigrated_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const a = connect(admin, { name: "test-admin", max: 1 });
  try {
    await a`CREATE DATABASE ${a(name)}`;
  } finally {
    await a.end();
  }
  const u = new URL(admin);
  u.pathname = `/${name}`;
  unmigrated = u.toString();
});

afterAll(async () => {
  const { admin } = await testServer();
  const a = connect(admin, { name: "test-admin", max: 1 });
  try {
    await a`DROP DATABASE IF EXISTS ${a(new URL(unmigrated).pathname.slice(1))} WITH (FORCE)`;
  } finally {
    await a.end();
  }
});

function env(extra: Record<string, string>): Record<string, string> {
  return { OBJECT_STORE_URL: store().url, VISIBILITY_TIMEOUT_MS: "300", ...extra };
}

describe("sink --until-idle never hangs", () => {
  // --give-up-ms far past each test's timeout: only "at once" can pass.
  const args = ["sink", "--until-idle", "--give-up-ms", "600000"];

  test("a STATE database never migrated: exit 1 at once, one line saying to migrate", async () => {
    const r = await runHarness(args, env({ DATABASE_URL: unmigrated }));
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toStartWith(
      `harness sink: ${MISSING_SCHEMA} (the state database at`,
    );
    expect(r.stdout).toBe("");
  }, 30_000);

  test("a DATA database never migrated: exit 1 at once, naming it; the batch stays queued, untouched", async () => {
    const b = await putBatch(store().store, jsonl(goodLines("acme", "m", 10)));
    const id = await publishBatchMessage(db().queue(), b);
    const r = await runHarness(
      args,
      env({ STATE_DATABASE_URL: db().url, DATA_DATABASE_URL: unmigrated, MAX_RECEIVES: "1000" }),
    );
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toStartWith(`harness sink: ${MISSING_SCHEMA} (the data database at`);
    const [m] = await db().sql`
      SELECT queue_name, last_error FROM state.queue_messages WHERE id = ${id}::bigint`;
    expect(m?.queue_name).toBe("buffer_queue");
    expect(m?.last_error).toBeNull();
  }, 30_000);

  test("--give-up-ms alone is a usage error", async () => {
    const r = await runHarness(["sink", "--give-up-ms", "1000"], env({ DATABASE_URL: db().url }));
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe("harness sink: --give-up-ms applies only with --until-idle");
  }, 30_000);
});
