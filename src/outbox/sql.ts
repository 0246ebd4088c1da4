import type postgres from "postgres";
import * as v from "valibot";
import { QUEUES, type QueueName, type QueuePayload } from "../contracts/queue";
import type { Db } from "../db/connect";

/**
 * The SQL of `state.outbox`, one named function per operation, and the only
 * place that writes it. Rows are written in the transaction (or the one
 * statement) of the call that caused them, their payloads checked against
 * their queue's contract first; the dispatcher's drainer moves them to the
 * queue (src/dispatcher/drainer.ts).
 */

export const OUTBOX_CHANNEL = "harness_outbox";

export interface OutboxRow<Q extends QueueName = QueueName> {
  queue: Q;
  payload: QueuePayload<Q>;
  /** The task and attempt whose call wrote this row (null for task creation). */
  taskId: string | null;
  attempt: number | null;
  /** Published hidden until the writing statement's now() plus this (the database clock). */
  delayMs?: number;
  /**
   * A payload field the writing statement sets to its own now() (RFC 3339,
   * UTC, milliseconds), as `completed_at`: the value given is a stand-in,
   * checked for its shape, then replaced.
   */
  stampNow?: keyof QueuePayload<Q> & string;
}

/** A `task_wakeup` row for each task (reaped or swept), carrying the attempt it wakes for. */
export function wakeupRows(
  tasks: readonly { id: string; attempt: number }[],
): OutboxRow<"task_wakeup">[] {
  return tasks.map((t) => ({
    queue: "task_wakeup",
    payload: { task_id: t.id },
    taskId: t.id,
    attempt: t.attempt,
  }));
}

/** An outbox row of any queue (a union, so each row's payload matches its own queue). */
export type AnyOutboxRow = { [Q in QueueName]: OutboxRow<Q> }[QueueName];

function checked(row: AnyOutboxRow): string {
  const r = v.safeParse(QUEUES[row.queue], row.payload);
  if (!r.success) {
    throw new Error(
      `outbox row for ${row.queue} breaks its contract: ${v.summarize(r.issues).replace(/\s*\n\s*/g, " ")}`,
    );
  }
  return JSON.stringify(r.output);
}

/**
 * THE insert into `state.outbox`, as a fragment for a CTE of the caller's
 * statement: `inserted AS (${outboxInsertSql(db, { rows, when })})`. With
 * `when`, rows are written only if it holds (a fenced CTE returned its row).
 * A batch already in the outbox for its task and attempt is not written again
 * (outbox_batch_once_idx): ON CONFLICT DO NOTHING. Rows take their ids in
 * the order given: a complete that carries its batch writes the batch's row
 * before its `task_completed`, as two calls would (src/verify/fencing.ts takes
 * an attempt's row with a later id than its task's `task_completed` as stale).
 */
export function outboxInsertSql(
  db: Db,
  p: { rows: readonly AnyOutboxRow[]; when?: postgres.PendingQuery<postgres.Row[]> },
): postgres.PendingQuery<postgres.Row[]> {
  const queues = p.rows.map((r) => r.queue);
  const payloads = p.rows.map(checked);
  const taskIds = p.rows.map((r) => r.taskId);
  const attempts = p.rows.map((r) => r.attempt);
  const delays = p.rows.map((r) => r.delayMs ?? null);
  const stamps = p.rows.map((r) => r.stampNow ?? null);
  return db`
    INSERT INTO state.outbox (queue_name, payload, task_id, attempt, available_at)
    SELECT u.q,
           -- now() in the contracts' RFC 3339, as Date.toISOString() writes it
           CASE WHEN u.s IS NULL THEN u.p ELSE u.p || jsonb_build_object(u.s,
             to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) END,
           u.t, u.a, now() + make_interval(secs => u.d / 1000)
    FROM unnest(${queues}::text[], ${payloads}::text[]::jsonb[], ${taskIds}::uuid[],
                ${attempts}::int[], ${delays}::float8[], ${stamps}::text[])
      WITH ORDINALITY AS u(q, p, t, a, d, s, n)
    WHERE ${p.when ?? db`true`}
    ORDER BY u.n
    ON CONFLICT DO NOTHING
    RETURNING id::text AS id, available_at, task_id`;
}

/**
 * Inserts outbox rows on their own; returns the ids written. With `notify`,
 * drainers in other processes are woken at commit (task creation from the
 * CLI, the reaper). Calls inside a dispatcher's request pass false and wake
 * their own drainer after commit: PostgreSQL serialises the commits of every
 * transaction that NOTIFYs, flush included, which capped the whole pipeline
 * near 1/fsync tasks per second.
 */
export async function outboxInsert(
  db: Db,
  p: { rows: readonly AnyOutboxRow[]; notify: boolean },
): Promise<string[]> {
  if (p.rows.length === 0) return [];
  const rows = await db`
    WITH inserted AS (${outboxInsertSql(db, p)}),
    notified AS (
      SELECT pg_notify(${OUTBOX_CHANNEL}, '') WHERE ${p.notify} AND EXISTS (SELECT 1 FROM inserted)
    )
    SELECT id, (SELECT count(*) FROM notified) AS notified FROM inserted`;
  return rows.map((r) => String(r.id));
}

const PendingRow = v.object({
  id: v.string(),
  queue_name: v.string(),
  payload: v.unknown(),
  available_at: v.nullable(v.date()),
  /** `created_at` in microseconds since the epoch, exact (see outboxDedupeId). */
  created_us: v.pipe(v.string(), v.regex(/^\d+$/)),
});
export type PendingRow = v.InferOutput<typeof PendingRow>;

/** Oldest first: ids are bigints, so a shorter one is smaller. */
const byId = (a: PendingRow, b: PendingRow) =>
  a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Takes up to `limit` pending rows (or the one row `id`, if still pending),
 * oldest first, skipping rows another drainer holds, and marks them sent in
 * the same statement. Call it inside the transaction that publishes them:
 * the mark is seen by no one until that transaction commits, after their
 * publish (invariant 4); should the publish fail, the rollback leaves them
 * pending. A taken row that can never be published is marked rejected
 * before commit (outboxMarkRejected with `taken`). Either way rows leave
 * `pending`, so the oldest never block the ones behind them.
 */
export async function outboxTakePending(
  db: Db,
  p: { limit: number; id?: string },
): Promise<PendingRow[]> {
  const rows = await db`
    UPDATE state.outbox o SET status = 'sent', sent_at = now()
    WHERE o.id IN (
      SELECT id FROM state.outbox
      WHERE status = 'pending' ${p.id === undefined ? db`` : db`AND id = ${p.id}::bigint`}
      ORDER BY id
      LIMIT ${p.limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING o.id::text AS id, o.queue_name, o.payload, o.available_at,
              (extract(epoch FROM o.created_at) * 1000000)::bigint::text AS created_us`;
  return v.parse(v.array(PendingRow), [...rows]).sort(byId);
}

/**
 * The dedupe id a row is published with (NATS: `Nats-Msg-Id`), the same on
 * every retry of that row. Its id alone is not enough: a database that is
 * reset (dropped and migrated again, or restored from a backup) hands out
 * the same ids again, and a reused id published within the broker's
 * duplicate window would be dropped as a repeat. The row's `created_at`, to
 * the microsecond, tells the two lives apart.
 */
export function outboxDedupeId(row: Pick<PendingRow, "id" | "created_us">): string {
  return `outbox:${row.id}@${row.created_us}`;
}

/** The ids of up to `limit` pending rows, oldest first, without locking them. */
export async function outboxPendingIds(db: Db, p: { limit: number }): Promise<string[]> {
  const rows = await db`
    SELECT id::text AS id FROM state.outbox WHERE status = 'pending' ORDER BY id LIMIT ${p.limit}`;
  return rows.map((r) => String(r.id));
}

/**
 * Marks rows that can never be published `rejected`, with the reason: never
 * retried. Only rows still pending; with `taken`, the rows this transaction
 * took (outboxTakePending marked them sent, not yet committed).
 */
export async function outboxMarkRejected(
  db: Db,
  p: { rows: ReadonlyArray<{ id: string; error: string }>; taken?: boolean },
): Promise<number> {
  if (p.rows.length === 0) return 0;
  const ids = p.rows.map((r) => r.id);
  const errors = p.rows.map((r) => r.error);
  const rows = await db`
    UPDATE state.outbox o SET status = 'rejected', error = u.error, sent_at = NULL
    FROM unnest(${ids}::bigint[], ${errors}::text[]) AS u(id, error)
    WHERE o.id = u.id AND o.status = ${p.taken === true ? db`'sent'` : db`'pending'`}
    RETURNING o.id`;
  return rows.length;
}

/** How many rows wait to be published (those of one queue, given `queue`). */
export async function outboxPendingCount(db: Db, p: { queue?: QueueName } = {}): Promise<number> {
  const [row] = await db`
    SELECT count(*)::int AS n FROM state.outbox
    WHERE status = 'pending' ${p.queue === undefined ? db`` : db`AND queue_name = ${p.queue}`}`;
  return Number(row?.n ?? 0);
}
