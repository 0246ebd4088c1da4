import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { publishPayloads } from "../support/queue";
import { TestPlatform } from "./platform";

/**
 * Scenario 1: every task's wakeup published 3–5 times, several workers racing
 * for them → each task succeeds in one attempt, every row exactly once.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 5000, visibilityMs: 3000 });
  await p.startDispatcher();
});
afterAll(async () => {
  await p.stop();
});

describe("invariants: duplicate wakeups", () => {
  test("3–5 wakeups per task and three workers: one successful attempt each, exact rows", async () => {
    const org = "dup-wakeups";
    const ids = await p.createTasks(org, 30, 20);
    // Extra copies of every wakeup, 2–4 more per task, before any worker runs.
    const extra = ids.flatMap((id, i) =>
      Array.from({ length: 2 + (i % 3) }, () => ({ task_id: id })),
    );
    await publishPayloads(p.queue, "task_wakeup", extra);
    for (let i = 0; i < 3; i++) p.startWorker(["--concurrency", "4"]);
    p.startSink(["--concurrency", "2"]);
    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(30);
    expect(report.rows.found).toBe(30 * 20);
    // One attempt per task: the extra wakeups found the task running or finished.
    expect(report.attempts.max).toBe(1);
    const [batches] = await p.data
      .sql`SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS tasks FROM data.sink_batches`;
    expect(batches).toEqual({ n: 30, tasks: 30 });
  }, 120_000);
});
