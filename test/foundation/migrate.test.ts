import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { testServer } from "../support/db";
import { runHarness } from "../support/processes";

/** `harness migrate` as a real process against two empty databases. */

const names = [`harness_mig_state_${process.pid}`, `harness_mig_data_${process.pid}`];
let urls: { state: string; data: string; same: string };
const STATE_TABLES = [
  "state.outbox",
  "state.queue_messages",
  "state.signing_keys",
  "state.task_attempts",
  "state.tasks",
];
const DATA_TABLES = ["data.alert_events", "data.sink_batches"];

function dbUrl(admin: string, name: string) {
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}

beforeAll(async () => {
  const { admin } = await testServer();
  const sql = connect(admin, { name: "test-admin", max: 1 });
  for (const n of [...names, `${names[0]}_same`]) {
    await sql`DROP DATABASE IF EXISTS ${sql(n)} WITH (FORCE)`;
    await sql`CREATE DATABASE ${sql(n)}`;
  }
  await sql.end();
  urls = {
    state: dbUrl(admin, names[0] ?? ""),
    data: dbUrl(admin, names[1] ?? ""),
    same: dbUrl(admin, `${names[0]}_same`),
  };
});

afterAll(async () => {
  const { admin } = await testServer();
  const sql = connect(admin, { name: "test-admin", max: 1 });
  for (const n of [...names, `${names[0]}_same`])
    await sql`DROP DATABASE IF EXISTS ${sql(n)} WITH (FORCE)`;
  await sql.end();
});

async function tablesIn(url: string): Promise<string[]> {
  const sql = connect(url, { name: "test", max: 1 });
  try {
    const rows =
      await sql`SELECT schemaname || '.' || tablename AS t FROM pg_tables WHERE schemaname IN ('state', 'data') ORDER BY 1`;
    return rows.map((r) => String(r.t));
  } finally {
    await sql.end();
  }
}

describe("harness migrate", () => {
  test("two concurrent migrates both succeed, each set applied once, into the right database", async () => {
    const env = { STATE_DATABASE_URL: urls.state, DATA_DATABASE_URL: urls.data };
    const [a, b] = await Promise.all([runHarness(["migrate"], env), runHarness(["migrate"], env)]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
    const out = a.stdout + b.stdout;
    expect(
      out.match(
        /applied 0000_state_tables, 0001_lease_reaper_and_signing_keys, 0002_task_attempts, 0003_heartbeat_hot_updates/g,
      ),
    ).toHaveLength(1);
    expect(out.match(/applied 0000_data_tables/g)).toHaveLength(1);
    expect(await tablesIn(urls.state)).toEqual(STATE_TABLES);
    expect(await tablesIn(urls.data)).toEqual(DATA_TABLES);
  });

  test("a second migrate is a no-op", async () => {
    const r = await runHarness(["migrate"], {
      STATE_DATABASE_URL: urls.state,
      DATA_DATABASE_URL: urls.data,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^state \(.*\): up to date\ndata \(.*\): up to date\n$/);
  });

  test("the same URL for both databases works", async () => {
    const first = await runHarness(["migrate"], { DATABASE_URL: urls.same });
    expect(first.code).toBe(0);
    expect(await tablesIn(urls.same)).toEqual([...DATA_TABLES, ...STATE_TABLES]);
    const again = await runHarness(["migrate"], { DATABASE_URL: urls.same });
    expect(again.stdout).not.toContain("applied");
  });

  test("an unreachable database is one clear line and a non-zero exit", async () => {
    const r = await runHarness(["migrate"], {
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere",
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("cannot reach the state database at 127.0.0.1:1/nowhere");
  });
});
