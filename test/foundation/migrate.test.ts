import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { migrateDatabase, migrationsOf } from "../../src/db/migrate";
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

  test("the per-org dedupe migration keeps every row, and then one key may exist once per org", async () => {
    const { admin } = await testServer();
    const name = `${names[1]}_keep`;
    const a = connect(admin, { name: "test-admin", max: 1 });
    await a`DROP DATABASE IF EXISTS ${a(name)} WITH (FORCE)`;
    await a`CREATE DATABASE ${a(name)}`;
    await a.end();
    const sql = connect(dbUrl(admin, name), { name: "test", max: 1 });
    try {
      // The data set as it was before: the first migration only, recorded as applied.
      const [first] = migrationsOf("data");
      if (first === undefined) throw new Error("no data migrations");
      for (const statement of first.statements) await sql.unsafe(statement);
      await sql`CREATE SCHEMA drizzle`;
      await sql`CREATE TABLE drizzle.__migrations_data (id serial PRIMARY KEY, tag text NOT NULL UNIQUE,
        hash text NOT NULL, created_at bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
      await sql`INSERT INTO drizzle.__migrations_data (tag, hash, created_at)
        VALUES (${first.tag}, ${first.hash}, ${first.when})`;
      const task = "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f";
      const seed: Array<[string, string]> = [
        ["acme", "k1"],
        ["acme", "k2"],
        ["globex", "k3"],
      ];
      for (const [org, key] of seed) {
        await sql`INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
          VALUES (${key}, ${org}, ${task}, 's', 'info', 't', now())`;
      }
      expect(await migrateDatabase(sql, "data")).toEqual([
        "0001_dashboard_indexes",
        "0002_per_org_dedupe",
      ]);
      const rows = await sql`SELECT org_id, dedupe_key FROM data.alert_events ORDER BY dedupe_key`;
      expect(rows.map((r) => [r.org_id, r.dedupe_key])).toEqual([
        ["acme", "k1"],
        ["acme", "k2"],
        ["globex", "k3"],
      ]);
      const [pk] = await sql`
        SELECT array_agg(a.attname::text ORDER BY k.n) AS cols
        FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attnum = k.attnum
        WHERE c.conname = 'alert_events_pkey' AND a.attrelid = c.conrelid`;
      expect(pk?.cols).toEqual(["org_id", "dedupe_key"]);
      // globex's key k1 is another alert than acme's k1.
      await sql`INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
        VALUES ('k1', 'globex', ${task}, 's', 'info', 't', now())`;
      expect(await sql`SELECT 1 FROM data.alert_events WHERE dedupe_key = 'k1'`).toHaveLength(2);
    } finally {
      await sql.end();
      const b = connect(admin, { name: "test-admin", max: 1 });
      await b`DROP DATABASE IF EXISTS ${b(name)} WITH (FORCE)`;
      await b.end();
    }
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
