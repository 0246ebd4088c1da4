import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Role } from "../support/processes";
import { claimedBy, expectFailpointKill } from "./crash";
import { TestPlatform } from "./platform";

/**
 * Scenario 4: a worker dies by kill -9 mid-task — right after its claim,
 * after writing its batch to the object store, and after buffer-publish but
 * before complete. Its lease expires, a retry by another worker (the
 * wakeup's redelivery or the reaper's) completes the task, every row is there
 * exactly once, and the crashed attempt wrote nothing after it was fenced.
 */

const TASKS = 6;
const ALERTS = 25;
let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 1500, visibilityMs: 1000 });
  await p.startDispatcher();
  p.startSink(["--concurrency", "2"]);
});
afterAll(async () => {
  await p.stop();
});

/**
 * Runs one crash: tasks first, then the doomed worker alone (so it surely
 * claims one), and once it died at `point` a healthy worker to finish.
 */
async function crashAt(point: string, org: string) {
  const ids = await p.createTasks(org, TASKS, ALERTS);
  const doomed = p.startWorker(["--concurrency", "1"], { HARNESS_FAILPOINTS: point });
  await expectFailpointKill(doomed, point);
  const crashed = claimedBy(doomed);
  expect(ids).toContain(crashed.taskId);
  expect(crashed.attempt).toBe(1);
  const healthy: Role = p.startWorker(["--concurrency", "3"]);
  try {
    await p.waitQuiet(org, ids, 45_000);
  } finally {
    expect(await healthy.stop("SIGTERM")).toBe(0);
  }
  const report = await p.expectInvariants(org);
  expect(report.tasks.succeeded).toBe(TASKS);
  expect(report.rows.found).toBe(TASKS * ALERTS);
  // The crashed attempt was fenced out and retried: the task succeeded on a later attempt.
  const [task] = await p.state
    .sql`SELECT status::text AS status, attempt FROM state.tasks WHERE id = ${crashed.taskId}::uuid`;
  expect(task?.status).toBe("succeeded");
  expect(Number(task?.attempt)).toBeGreaterThanOrEqual(2);
  const outbox = await p.state.sql`
    SELECT queue_name, attempt FROM state.outbox
    WHERE task_id = ${crashed.taskId}::uuid AND queue_name IN ('buffer_queue', 'task_completed')
    ORDER BY id`;
  return { crashed, outbox: outbox.map((r) => `${r.queue_name}#${r.attempt}`), task };
}

describe("invariants: worker crash", () => {
  test("kill -9 right after the claim: the lease expires, another worker completes", async () => {
    const r = await crashAt("worker.after_claim", "worker-after-claim");
    // Attempt 1 published nothing; the retry published and completed.
    expect(r.outbox).toEqual([
      `buffer_queue#${r.task?.attempt}`,
      `task_completed#${r.task?.attempt}`,
    ]);
  }, 60_000);

  test("kill -9 after writing the batch, before buffer-publish: the orphan batch is never ingested", async () => {
    const r = await crashAt("worker.after_write", "worker-after-write");
    expect(r.outbox).toEqual([
      `buffer_queue#${r.task?.attempt}`,
      `task_completed#${r.task?.attempt}`,
    ]);
    // The orphan batch of attempt 1 is in the store, but the sink only ever saw the retry's.
    const batches = await p.data
      .sql`SELECT attempt FROM data.sink_batches WHERE task_id = ${r.crashed.taskId}::uuid`;
    expect(batches.map((b) => Number(b.attempt))).toEqual([Number(r.task?.attempt)]);
    const orphans = new Bun.Glob(`worker-after-write/${r.crashed.taskId}/1-*.jsonl`);
    expect(Array.from(orphans.scanSync(p.objectDir))).toHaveLength(1);
  }, 60_000);

  test("kill -9 after buffer-publish, before complete: the retry's rows are all duplicates", async () => {
    const r = await crashAt("worker.after_publish", "worker-after-publish");
    const a = r.task?.attempt;
    // Attempt 1 published and never completed; the retry published again and completed.
    expect(r.outbox).toEqual(["buffer_queue#1", `buffer_queue#${a}`, `task_completed#${a}`]);
    // The sink ingested both batches; the second added nothing.
    const batches = await p.data.sql`
        SELECT attempt, rows_inserted, rows_skipped FROM data.sink_batches
        WHERE task_id = ${r.crashed.taskId}::uuid ORDER BY attempt`;
    const rows = batches.map((b) => [Number(b.attempt), b.rows_inserted, b.rows_skipped]);
    expect(rows).toEqual([
      [1, ALERTS, 0],
      [Number(a), 0, ALERTS],
    ]);
  }, 60_000);
});
