import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";
import { type TestDatabase, testDatabase } from "../support/db";
import { type EmbeddedServer, startEmbeddedServer } from "../support/embedded";
import type { Role } from "../support/processes";
import { waitFor } from "../support/wait";
import { TEST_QUEUE, TestPlatform } from "./platform";

/**
 * PostgreSQL itself restarted mid-run: the roles run against a separate
 * embedded server, which is stopped (fast shutdown: every connection is
 * terminated) while tasks are in flight and started again on the same port.
 * No role is restarted by the test: each must reconnect on its own and the
 * run must finish with every task succeeded and every row exactly once.
 */

let server: EmbeddedServer;
let p: TestPlatform;

/** A migrated database of its own on the embedded server; the server's teardown removes it. */
async function embeddedDatabase(name: string): Promise<TestDatabase> {
  const admin = connect(server.url(), { name: "test-admin", max: 1 });
  try {
    await admin`CREATE DATABASE ${admin(name)}`;
  } finally {
    await admin.end();
  }
  const url = server.url(name);
  const sql = connect(url, { name: "test", max: 4 });
  await migrateDatabase(sql, "state");
  await migrateDatabase(sql, "data");
  return testDatabase(name, url, sql);
}

beforeAll(async () => {
  server = await startEmbeddedServer();
  const [state, data] = await Promise.all([
    embeddedDatabase("restart_state"),
    embeddedDatabase("restart_data"),
  ]);
  p = await TestPlatform.start({ leaseMs: 2000, visibilityMs: 1500, databases: { state, data } });
  await p.startDispatcher();
  for (let i = 0; i < 2; i++) p.startWorker(["--concurrency", "4"]);
  p.startSink(["--concurrency", "2"]);
}, 60_000);
afterAll(async () => {
  await p?.stop();
  await server?.destroy();
});

const alive = (r: Role) => r.proc.exitCode === null && r.proc.signalCode === null;

async function succeeded(org: string): Promise<number> {
  const [row] = await p.state
    .sql`SELECT count(*)::int AS n FROM state.tasks WHERE org_id = ${org} AND status = 'succeeded'`;
  return Number(row?.n ?? 0);
}

describe("invariants: PostgreSQL restarted mid-run", () => {
  test("stop and start PostgreSQL while tasks are in flight: the roles reconnect and finish on their own", async () => {
    const org = "pg-restart";
    const tasks = 40;
    const alerts = 20;
    const roles = [...p.roles];
    const ids = await p.createTasks(org, tasks, alerts, 400);
    await waitFor(async () => (await succeeded(org)) >= 4, {
      what: "the first tasks to succeed",
      timeoutMs: 30_000,
    });
    const logged = roles.map((r) => r.logs.length);
    expect(await succeeded(org)).toBeLessThan(tasks); // stopped mid-run, not after it

    await server.stop();
    // Every role that keeps asking PostgreSQL felt the outage (a failed query or
    // connection, logged) before the restart. On NATS the sink asks it only
    // for a batch in hand, and no new batch comes while the outbox cannot be
    // drained: a sink that was idle at the stop has nothing to feel.
    const asking = roles.filter((r) => TEST_QUEUE === "pgqueue" || !r.name.startsWith("sink"));
    await waitFor(
      () =>
        asking.every((r) =>
          r.logs
            .slice(logged[roles.indexOf(r)])
            .some((l) => l.level === "error" || l.level === "warn"),
        ),
      { what: "every role to log the outage", timeoutMs: 20_000 },
    );
    await server.start();

    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(tasks);
    expect(report.rows.found).toBe(tasks * alerts);
    // Nobody was restarted and nobody died.
    expect(p.roles).toEqual(roles);
    expect(roles.filter((r) => !alive(r)).map((r) => r.name)).toEqual([]);
  }, 120_000);
});
