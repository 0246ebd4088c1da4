import * as v from "valibot";
import type { BufferMessage } from "../../contracts/queue";
import type { Db } from "../../db/connect";
import { type AnyOutboxRow, outboxInsertSql } from "../../outbox/sql";
import { amongIds, type Fence, fenceOf, fenceSql, lockedInIdOrder } from "./fence";

/**
 * The fenced complete on `state.tasks`, in one statement (see ./tasks.ts for
 * the others): the check, the change and its outbox rows commit together.
 */

/**
 * A complete: the fence and, when the attempt hands its one batch over with
 * it, that batch's `buffer_queue` message (checked by ../batch.ts first).
 */
export type CompleteCall = Fence & { message?: BufferMessage };

/**
 * Marks the task succeeded, ends its attempt `completed`, and writes one
 * `task_completed` outbox row whose `completed_at` is the statement's now()
 * (the task's `finished_at`). `orgId` is the task row's: the fence compared it.
 * With a batch it first does what `taskPublishBatch` does for it: the batch
 * joins the attempt's batches (`maxBatches` at most) and its `buffer_queue`
 * row is written once. False when the fence did not hold or the batch is
 * past the cap: then nothing changed.
 */
export async function taskComplete(
  db: Db,
  p: CompleteCall & { maxBatches: number },
): Promise<boolean> {
  const [done] = await taskCompleteMany(db, { calls: [p], maxBatches: p.maxBatches });
  return done === true;
}

const CompletedRow = v.object({ done: v.boolean() });

/** The outbox rows of `calls`: every batch before every `task_completed` (see outboxInsertSql). */
function completeRows(calls: readonly CompleteCall[]): AnyOutboxRow[] {
  const batches: AnyOutboxRow[] = calls.flatMap((c) =>
    c.message === undefined
      ? []
      : [{ queue: "buffer_queue", payload: c.message, taskId: c.taskId, attempt: c.attempt }],
  );
  const completions: AnyOutboxRow[] = calls.map((c) => ({
    queue: "task_completed",
    payload: {
      task_id: c.taskId,
      org_id: c.orgId,
      attempt: c.attempt,
      completed_at: new Date().toISOString(),
    },
    taskId: c.taskId,
    attempt: c.attempt,
    stampNow: "completed_at",
  }));
  return [...batches, ...completions];
}

/**
 * `taskComplete` for several calls on distinct tasks in one statement (merged
 * by ../completes.ts): each call fenced against its own row of `r` by the
 * same fence and capped on its own task row, each with its own outcome, in
 * order. Rows are locked in id order first, so two such statements never
 * deadlock over the same tasks. A batch the attempt already has (a repeat,
 * or one it buffer-published) is not counted again, and its outbox row is
 * not written again (outbox_batch_once_idx).
 */
export async function taskCompleteMany(
  db: Db,
  p: { calls: readonly CompleteCall[]; maxBatches: number },
): Promise<boolean[]> {
  const calls = p.calls;
  if (calls.length === 0) return [];
  const key = db`md5(r.batch_uri)::uuid`;
  const ids = calls.map((c) => c.taskId);
  const raw = await db`
    WITH r AS (
      SELECT * FROM unnest(${ids}::uuid[], ${calls.map((c) => c.attempt)}::int[],
                           ${calls.map((c) => c.leaseToken)}::uuid[], ${calls.map((c) => c.orgId)}::text[],
                           ${calls.map((c) => c.message?.batch_uri ?? null)}::text[])
        WITH ORDINALITY AS r(id, attempt, lease_token, org_id, batch_uri, n)
    ), ${lockedInIdOrder(db, ids)}, done AS (
      UPDATE state.tasks t SET status = 'succeeded', finished_at = now(), updated_at = now(),
        attempt_batches = CASE WHEN r.batch_uri IS NULL OR ${key} = ANY(t.attempt_batches)
          THEN t.attempt_batches ELSE t.attempt_batches || ${key} END
      FROM r JOIN locked l ON l.id = r.id
      WHERE ${amongIds(db, db`t.id`, ids)} AND ${fenceSql(db, fenceOf(db, "r"))}
        AND (r.batch_uri IS NULL OR ${key} = ANY(t.attempt_batches)
             OR cardinality(t.attempt_batches) < ${p.maxBatches})
      RETURNING t.id, t.attempt
    ), ended AS (
      UPDATE state.task_attempts a SET ended_at = now(), outcome = 'completed'
      FROM done
      WHERE a.task_id = done.id AND ${amongIds(db, db`a.task_id`, ids)} AND a.attempt = done.attempt
    ), inserted AS (${outboxInsertSql(db, {
      rows: completeRows(calls),
      when: db`(u.t, u.a) IN (SELECT d.id, d.attempt FROM done d)`,
    })})
    SELECT d.id IS NOT NULL AS done FROM r LEFT JOIN done d ON d.id = r.id ORDER BY r.n`;
  const got = v.parse(v.array(CompletedRow), [...raw]);
  if (got.length !== calls.length) {
    throw new Error(`completing ${calls.length} tasks returned ${got.length} rows`);
  }
  return got.map((row) => row.done);
}
