import * as v from "valibot";
import type { BufferMessage } from "../../contracts/queue";
import type { Db } from "../../db/connect";
import { outboxInsertSql } from "../../outbox/sql";
import {
  amongIds,
  type Fence,
  fencedCallsHead,
  fenceOf,
  fenceSql,
  leaseEnd,
  lockedInIdOrder,
  msFromNow,
} from "./fence";

/**
 * The fenced statements on `state.tasks`: one statement each, whose WHERE
 * clause is the fence (./fence.ts) and whose outbox row, if any, is written
 * by a CTE of the same statement. So the check, the change and its side
 * effect commit together, on one row lock, in one round trip. Each returns
 * null (or says `held: false`) when the fence did not hold and nothing changed.
 * The complete, which may carry a batch, is in ./complete.ts.
 */

/** Extends the lease held by `f`; the new expiry, or null. */
export async function leaseRenew(db: Db, p: Fence & { leaseMs: number }): Promise<Date | null> {
  const [at] = await leaseRenewMany(db, { fences: [p], leaseMs: p.leaseMs });
  return at ?? null;
}

const RenewedRow = v.object({ lease_expires_at: v.nullable(v.date()) });

/**
 * `leaseRenew` for several heartbeats on distinct tasks in one statement
 * (merged by ../renewals.ts): each fenced against its own row of `r` by the
 * same fence, each with its own new expiry (or null), in order.
 */
export async function leaseRenewMany(
  db: Db,
  p: { fences: readonly Fence[]; leaseMs: number },
): Promise<Array<Date | null>> {
  const f = p.fences;
  if (f.length === 0) return [];
  const ids = f.map((x) => x.taskId);
  const raw = await db`${fencedCallsHead(db, f)}, renewed AS (
      UPDATE state.tasks t SET lease_expires_at = ${leaseEnd(db, p.leaseMs)}, updated_at = now()
      FROM r JOIN locked l ON l.id = r.id
      WHERE ${amongIds(db, db`t.id`, ids)} AND ${fenceSql(db, fenceOf(db, "r"))}
      RETURNING t.id, t.lease_expires_at
    )
    SELECT x.lease_expires_at FROM r LEFT JOIN renewed x ON x.id = r.id ORDER BY r.n`;
  const rows = v.parse(v.array(RenewedRow), [...raw]);
  if (rows.length !== f.length)
    throw new Error(`renewing ${f.length} leases returned ${rows.length} rows`);
  return rows.map((row) => row.lease_expires_at);
}

/**
 * leaseRenew without its fence, for the failswitch `dispatcher.unfenced_heartbeat`
 * only: tests take the fence away with it to prove the checker sees a stale renewal.
 */
export async function leaseRenewUnfenced(
  db: Db,
  p: Fence & { leaseMs: number },
): Promise<Date | null> {
  const rows = await db`
    UPDATE state.tasks t SET lease_expires_at = ${leaseEnd(db, p.leaseMs)}, updated_at = now()
    WHERE t.id = ${p.taskId}
    RETURNING t.lease_expires_at`;
  const at = rows[0]?.lease_expires_at;
  return at instanceof Date ? at : null;
}

const PublishRow = v.object({ accepted: v.nullable(v.boolean()), inserted: v.number() });

export type PublishOutcome = { held: false } | { held: true; accepted: boolean; inserted: boolean };

/**
 * Records a batch of the attempt holding the fence and writes its
 * `buffer_queue` outbox row. The task row keeps the attempt's distinct
 * batches (`attempt_batches`, md5 of each batch_uri): a new one is appended
 * while there are fewer than `maxBatches`; a repeat changes nothing. The
 * UPDATE re-reads the row under its lock, so two racing calls see each
 * other: the cap is exact. `accepted` is whether the batch is among the
 * attempt's batches now; the outbox row is written once
 * (outbox_batch_once_idx), so `inserted` is false for a repeat.
 */
export async function taskPublishBatch(
  db: Db,
  p: Fence & { message: BufferMessage; maxBatches: number },
): Promise<PublishOutcome> {
  const [outcome] = await taskPublishBatchMany(db, { calls: [p], maxBatches: p.maxBatches });
  if (outcome === undefined) throw new Error(`publishing a batch of ${p.taskId} returned no row`);
  return outcome;
}

/**
 * `taskPublishBatch` for several calls on distinct tasks in one statement
 * (merged by ../publishes.ts): each call fenced against its own row of `r`
 * by the same fence and capped on its own task row, each with its own
 * outcome, in order. Rows are locked in id order first, so two such
 * statements never deadlock over the same tasks.
 */
export async function taskPublishBatchMany(
  db: Db,
  p: { calls: readonly (Fence & { message: BufferMessage })[]; maxBatches: number },
): Promise<PublishOutcome[]> {
  const calls = p.calls;
  if (calls.length === 0) return [];
  const rows = calls.map((c) => ({
    queue: "buffer_queue" as const,
    payload: c.message,
    taskId: c.taskId,
    attempt: c.attempt,
  }));
  const key = db`md5(r.batch_uri)::uuid`;
  const ids = calls.map((c) => c.taskId);
  const raw = await db`
    WITH r AS (
      SELECT * FROM unnest(${ids}::uuid[], ${calls.map((c) => c.attempt)}::int[],
                           ${calls.map((c) => c.leaseToken)}::uuid[], ${calls.map((c) => c.orgId)}::text[],
                           ${calls.map((c) => c.message.batch_uri)}::text[])
        WITH ORDINALITY AS r(id, attempt, lease_token, org_id, batch_uri, n)
    ), ${lockedInIdOrder(db, ids)}, counted AS (
      UPDATE state.tasks t
      SET attempt_batches = CASE
        WHEN ${key} = ANY(t.attempt_batches) OR cardinality(t.attempt_batches) >= ${p.maxBatches}
        THEN t.attempt_batches
        ELSE t.attempt_batches || ${key} END
      FROM r JOIN locked l ON l.id = r.id
      WHERE ${amongIds(db, db`t.id`, ids)} AND ${fenceSql(db, fenceOf(db, "r"))}
      RETURNING t.id, ${key} = ANY(t.attempt_batches) AS accepted
    ), inserted AS (${outboxInsertSql(db, {
      rows,
      when: db`u.t IN (SELECT c.id FROM counted c WHERE c.accepted)`,
    })})
    SELECT c.accepted, (SELECT count(*) FROM inserted i WHERE i.task_id = r.id)::int AS inserted
    FROM r LEFT JOIN counted c ON c.id = r.id
    ORDER BY r.n`;
  const got = v.parse(v.array(PublishRow), [...raw]);
  if (got.length !== calls.length) {
    throw new Error(`publishing ${calls.length} batches returned ${got.length} rows`);
  }
  return got.map((r) =>
    r.accepted === null
      ? { held: false }
      : { held: true, accepted: r.accepted, inserted: r.inserted > 0 },
  );
}

const FailRow = v.object({ failed: v.number(), retry_at: v.nullable(v.date()) });

/**
 * Ends the attempt holding the fence `failed` with its reason. With
 * `retryAfterMs` the task goes back to `queued` (no lease), not claimable
 * before `retry_at`, that long after the statement's now(), and gets a
 * `task_wakeup` outbox row published hidden until the same instant; without
 * it the task ends `failed` with `last_error`.
 * Null when the fence did not hold; otherwise when the retry is due (or null).
 */
export async function taskFail(
  db: Db,
  p: Fence & { reason: string; retryAfterMs: number | null },
): Promise<{ retryAt: Date | null } | null> {
  const requeue = p.retryAfterMs !== null;
  const wakeup = {
    queue: "task_wakeup" as const,
    payload: { task_id: p.taskId },
    taskId: p.taskId,
  };
  const wakeups =
    p.retryAfterMs === null ? [] : [{ ...wakeup, attempt: p.attempt, delayMs: p.retryAfterMs }];
  const [raw] = await db`
    WITH failed AS (
      UPDATE state.tasks t
      SET status = ${requeue ? "queued" : "failed"}::state.task_status, last_error = ${p.reason},
          finished_at = CASE WHEN ${requeue} THEN NULL ELSE now() END,
          lease_token = CASE WHEN ${requeue} THEN NULL ELSE t.lease_token END,
          lease_expires_at = CASE WHEN ${requeue} THEN NULL ELSE t.lease_expires_at END,
          retry_at = ${p.retryAfterMs === null ? null : msFromNow(db, p.retryAfterMs)},
          updated_at = now()
      WHERE ${fenceSql(db, p)}
      RETURNING t.id
    ), ended AS (
      UPDATE state.task_attempts a SET ended_at = now(), outcome = 'failed', reason = ${p.reason}
      FROM failed WHERE a.task_id = failed.id AND a.task_id = ${p.taskId} AND a.attempt = ${p.attempt}
    ), inserted AS (${outboxInsertSql(db, {
      rows: wakeups,
      when: db`EXISTS (SELECT 1 FROM failed)`,
    })})
    SELECT (SELECT count(*) FROM failed)::int AS failed,
           (SELECT max(available_at) FROM inserted) AS retry_at`;
  const r = v.parse(FailRow, raw);
  return r.failed === 1 ? { retryAt: r.retry_at } : null;
}
