import { describe, expect, test } from "bun:test";
import { outboxMarkRejected, outboxPendingIds, outboxTakePending } from "../../src/outbox/sql";
import { collectStatus, formatStatus, STATUS_FAILURES } from "../../src/reads/status";
import { createTasks } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";

/** `harness status` as data and text: counts, and the reasons of the latest failed tasks. */

const db = useFreshDatabase();

async function failed(n: number): Promise<string[]> {
  const ids = await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: n });
  for (const [i, id] of ids.entries()) {
    await db().sql`
      UPDATE state.tasks SET status = 'failed', attempt = 2, last_error = ${`reason ${i}\nsecond line`},
        finished_at = now() + make_interval(secs => ${i}) WHERE id = ${id}`;
  }
  return ids;
}

describe("status", () => {
  test("no failures: the report's failures are empty and the text has no failure lines", async () => {
    await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 2 });
    const r = await collectStatus({
      state: db().sql,
      data: db().sql,
      queues: db().queue().admin(),
    });
    expect(r.tasks).toEqual({ queued: 2, running: 0, succeeded: 0, failed: 0 });
    expect(r.outbox).toEqual({ pending: 2, rejected: 0 });
    expect(r.alerts).toEqual({ rows: 0, batches: 0, inserted: 0, skipped: 0 });
    expect(r.failures).toEqual([]);
    expect(formatStatus(r)).not.toContain("failures");
  });

  test(`the last ${STATUS_FAILURES} failed tasks, newest first, with their last_error`, async () => {
    const ids = await failed(STATUS_FAILURES + 2);
    const r = await collectStatus({
      state: db().sql,
      data: db().sql,
      queues: db().queue().admin(),
    });
    expect(r.tasks.failed).toBe(STATUS_FAILURES + 2);
    const newest = ids.slice(-STATUS_FAILURES).reverse();
    expect(r.failures.map((f) => f.task_id)).toEqual(newest);
    expect(r.failures[0]).toMatchObject({
      org_id: "acme",
      attempt: 2,
      last_error: `reason ${STATUS_FAILURES + 1}\nsecond line`,
    });
    const text = formatStatus(r);
    expect(text).toContain(`recent failures (last ${STATUS_FAILURES} of ${STATUS_FAILURES + 2})`);
    expect(text).toContain(
      `${newest[0]} acme attempt 2: reason ${STATUS_FAILURES + 1} second line`,
    );
  });

  test("rejected outbox rows are counted apart from pending ones, in the data and the text", async () => {
    await db().sql`DELETE FROM state.outbox`;
    await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 4 });
    const ids = await outboxPendingIds(db().sql, { limit: 10 });
    await outboxMarkRejected(db().sql, {
      rows: ids.slice(0, 2).map((id) => ({ id, error: "refused by the queue" })),
    });
    // Taken outside a transaction: marked sent at once.
    await outboxTakePending(db().sql, { limit: 1, id: ids[2] });
    const r = await collectStatus({
      state: db().sql,
      data: db().sql,
      queues: db().queue().admin(),
    });
    expect(r.outbox).toEqual({ pending: 1, rejected: 2 });
    expect(formatStatus(r)).toContain("outbox   pending 1  rejected 2\n");
  });
});
