import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import type { Role } from "../support/processes";
import { claimedBy, expectFailpointKill } from "./crash";
import { TestPlatform } from "./platform";

/**
 * Scenario 4: a worker dies by kill -9 mid-task — right after its claim,
 * after writing its batch to the object store, after buffer-publish but
 * before complete (a `--exec` worker: the default worker hands its batch
 * over with its complete), and after its complete committed but before its
 * wakeup was acked. Unless the task was completed, its lease expires, a
 * retry by another worker (the wakeup's redelivery or the reaper's)
 * completes the task; every row is there exactly once, and the crashed
 * attempt wrote nothing after it was fenced.
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

/** The default worker's work as a task program, for the doomed `--exec` worker. */
const SYNTHETIC = resolve(import.meta.dir, "../../examples/synthetic.sh");

/**
 * Runs one crash: tasks first, then the doomed worker alone (so it surely
 * claims one; with `exec`, running examples/synthetic.sh), and once it died
 * at `point` a healthy (default) worker to finish. Unless `completed` (the
 * crash came after the complete committed), the crashed attempt's task
 * succeeds on a later attempt.
 */
async function crashAt(
  point: string,
  org: string,
  o: { exec?: boolean; completed?: boolean } = {},
) {
  const ids = await p.createTasks(org, TASKS, ALERTS);
  const exec = o.exec === true ? ["--exec", SYNTHETIC] : [];
  const doomed = p.startWorker([...exec, "--concurrency", "1"], { HARNESS_FAILPOINTS: point });
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
  const [task] = await p.state
    .sql`SELECT status::text AS status, attempt FROM state.tasks WHERE id = ${crashed.taskId}::uuid`;
  expect(task?.status).toBe("succeeded");
  if (o.completed === true) expect(Number(task?.attempt)).toBe(1);
  // Else the crashed attempt was fenced out and retried: the task succeeded on a later attempt.
  else expect(Number(task?.attempt)).toBeGreaterThanOrEqual(2);
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

  test("kill -9 after writing the batch, before complete hands it over: the orphan batch is never ingested", async () => {
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

  test("kill -9 of a --exec worker after buffer-publish, before complete: the retry's rows are all duplicates", async () => {
    const r = await crashAt("worker.after_publish", "worker-after-publish", { exec: true });
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

  test("kill -9 after complete (carrying the batch) committed, before the wakeup's ack: nothing is redone", async () => {
    const r = await crashAt("worker.after_complete", "worker-after-complete", { completed: true });
    // Attempt 1 published and completed in one call; the redelivered wakeup found the task finished.
    expect(r.outbox).toEqual(["buffer_queue#1", "task_completed#1"]);
    const batches = await p.data.sql`
        SELECT attempt, rows_inserted FROM data.sink_batches WHERE task_id = ${r.crashed.taskId}::uuid`;
    expect(batches.map((b) => [Number(b.attempt), b.rows_inserted])).toEqual([[1, ALERTS]]);
    const [attempts] = await p.state.sql`
        SELECT count(*)::int AS n FROM state.task_attempts WHERE task_id = ${r.crashed.taskId}::uuid`;
    expect(attempts?.n).toBe(1);
  }, 60_000);
});
