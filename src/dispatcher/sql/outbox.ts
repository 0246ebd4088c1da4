import * as v from "valibot";
import { QUEUES, type QueueName, type QueuePayload } from "../../contracts/queue";
import type { Db } from "../../db/connect";

/**
 * The SQL of `state.outbox`, one named function per operation. Rows are
 * written in the transaction of the call that caused them; the drainer moves
 * them to the queue (see ../drainer.ts).
 */

export const OUTBOX_CHANNEL = "harness_outbox";

export interface OutboxRow<Q extends QueueName = QueueName> {
  queue: Q;
  payload: QueuePayload<Q>;
  taskId: string | null;
  attempt: number | null;
}

/**
 * Inserts outbox rows; payloads are checked first. With `notify`, drainers in
 * other processes are woken at commit (task creation from the CLI). Calls
 * inside a dispatcher pass false and wake their own drainer after commit:
 * PostgreSQL serialises the commits of every transaction that NOTIFYs,
 * flush included, which capped the whole pipeline near 1/fsync tasks per second.
 */
export async function outboxInsert(
  db: Db,
  p: { rows: readonly OutboxRow[]; notify: boolean },
): Promise<string[]> {
  if (p.rows.length === 0) return [];
  const queues = p.rows.map((r) => r.queue);
  const payloads = p.rows.map((r) => JSON.stringify(v.parse(QUEUES[r.queue], r.payload)));
  const taskIds = p.rows.map((r) => r.taskId);
  const attempts = p.rows.map((r) => r.attempt);
  const inserted = await db`
    INSERT INTO state.outbox (queue_name, payload, task_id, attempt)
    SELECT q, p, t, a
    FROM unnest(${queues}::text[], ${payloads}::text[]::jsonb[], ${taskIds}::uuid[], ${attempts}::int[]) AS u(q, p, t, a)
    RETURNING id::text AS id`;
  if (p.notify) await db`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`;
  return inserted.map((r) => String(r.id));
}

const PendingRow = v.object({ id: v.string(), queue_name: v.string(), payload: v.unknown() });
export type PendingRow = v.InferOutput<typeof PendingRow>;

/**
 * Locks up to `limit` pending rows, oldest first, skipping rows another
 * drainer holds. Call inside a transaction that publishes then marks them sent.
 */
export async function outboxLockPending(db: Db, p: { limit: number }): Promise<PendingRow[]> {
  const rows = await db`
    SELECT id::text AS id, queue_name, payload FROM state.outbox
    WHERE status = 'pending'
    ORDER BY id
    LIMIT ${p.limit}
    FOR UPDATE SKIP LOCKED`;
  return v.parse(v.array(PendingRow), [...rows]);
}

/** Marks rows sent, by the database clock. */
export async function outboxMarkSent(db: Db, p: { ids: readonly string[] }): Promise<number> {
  if (p.ids.length === 0) return 0;
  const rows = await db`
    UPDATE state.outbox SET status = 'sent', sent_at = now()
    WHERE id = ANY(${p.ids}::bigint[]) AND status = 'pending'
    RETURNING id`;
  return rows.length;
}

/** How many rows wait to be published. */
export async function outboxPendingCount(db: Db): Promise<number> {
  const [row] = await db`SELECT count(*)::int AS n FROM state.outbox WHERE status = 'pending'`;
  return Number(row?.n ?? 0);
}
