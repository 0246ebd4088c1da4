import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { waitFor } from "../support/wait";
import { expectFailpointKill, killNine, outboxCounts, runSeed, seededRandom } from "./crash";
import { TestPlatform } from "./platform";

/**
 * Scenario 3: the dispatcher dies by kill -9 mid-flight — at the failpoint
 * between an outbox commit and its publish, at a seeded random moment under
 * load, and as one of two dispatchers draining side by side. After a restart
 * on the same port (the workers' DISPATCHER_URL stays valid) everything
 * drains: every task succeeds, every row is there exactly once, no stale
 * attempt wrote anything after it was fenced.
 */

let p: TestPlatform;
let port: number;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 2000, visibilityMs: 1500 });
  const first = await p.startDispatcher({ HARNESS_FAILPOINTS: "dispatcher.after_outbox_commit:7" });
  port = first.port;
  for (let i = 0; i < 2; i++) p.startWorker(["--concurrency", "4"]);
  p.startSink(["--concurrency", "2"]);
});
afterAll(async () => {
  await p.stop();
});

/** The dispatcher that serves the workers' URL now (the latest one started on `port`). */
function current() {
  const d = p.dispatchers.findLast((x) => x.port === port);
  if (d === undefined) throw new Error("no dispatcher on the workers' port");
  return d;
}

describe("invariants: dispatcher crash", () => {
  test("kill -9 between outbox commit and publish, restart on the same port: everything drains, exact rows", async () => {
    const org = "dispatcher-failpoint";
    const doomed = current();
    const ids = await p.createTasks(org, 20, 10, 100);
    await expectFailpointKill(doomed.role, "dispatcher.after_outbox_commit");
    // The call's outbox row is committed and nobody is left to publish it.
    const before = await outboxCounts(p.state.sql, ids);
    expect(before.pending).toBeGreaterThanOrEqual(1);
    const [done] = await p.state
      .sql`SELECT count(*)::int AS n FROM state.tasks WHERE org_id = ${org} AND status = 'succeeded'`;
    expect(Number(done?.n)).toBeLessThan(20);

    await p.startDispatcher({}, port);
    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(20);
    expect(report.rows.found).toBe(20 * 10);
  }, 90_000);

  test("kill -9 at a seeded random moment under load, restart: everything drains, exact rows", async () => {
    const org = "dispatcher-random";
    const random = seededRandom(runSeed("dispatcher random kill"));
    const count = 60;
    const ids = await p.createTasks(org, count, 10, 300);
    // The moment: once the dispatcher has written a random number of outbox rows past the
    // wakeups `task create` wrote (each task adds a buffer and a completion row).
    const threshold = count + 1 + Math.floor(random() * count * 1.5);
    await waitFor(async () => (await outboxCounts(p.state.sql, ids)).total >= threshold, {
      what: `${threshold} outbox rows for the tasks`,
      timeoutMs: 30_000,
      intervalMs: 10,
    });
    await killNine(current().role);
    const [left] = await p.state
      .sql`SELECT count(*)::int AS n FROM state.tasks WHERE org_id = ${org} AND status <> 'succeeded'`;
    expect(Number(left?.n)).toBeGreaterThan(0); // killed mid-run, not after it

    await p.startDispatcher({}, port);
    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(count);
    expect(report.rows.found).toBe(count * 10);
  }, 90_000);

  test("two dispatchers draining one outbox, one killed mid-drain: the other publishes its rows", async () => {
    const org = "dispatcher-pair";
    const doomed = await p.startDispatcher({
      HARNESS_FAILPOINTS: "dispatcher.after_drain_publish",
    });
    expect(doomed.port).not.toBe(port);
    // Both drainers race for every batch (SKIP LOCKED); feed them until the doomed one wins one.
    const ids: string[] = [];
    await waitFor(
      async () => {
        if (doomed.role.proc.signalCode !== null) return true;
        ids.push(...(await p.createTasks(org, 5, 10, 50)));
        return doomed.role.proc.signalCode !== null;
      },
      { what: "the second dispatcher to win a drain round and die", timeoutMs: 30_000 },
    );
    await expectFailpointKill(doomed.role, "dispatcher.after_drain_publish");

    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(ids.length);
    expect(report.rows.found).toBe(ids.length * 10);
    // The survivor never went down: it drained what the dead one had locked and rolled back.
    expect(current().role.proc.exitCode).toBeNull();
  }, 90_000);
});
