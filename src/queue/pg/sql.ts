import * as v from "valibot";
import type { Db } from "../../db/connect";
import type { Depth } from "../seam";

/**
 * The SQL of `state.queue_messages`, one named function per operation.
 * Visibility is decided by the database clock here and nowhere else.
 */

export const NOTIFY_CHANNEL = "harness_queue";

const MessageRow = v.object({
  id: v.string(),
  queue_name: v.string(),
  payload: v.unknown(),
  receive_count: v.number(),
  last_error: v.nullable(v.string()),
  created_at: v.date(),
});
export type MessageRow = v.InferOutput<typeof MessageRow>;
const MessageRows = v.array(MessageRow);

export interface InsertParams {
  queue: string;
  messages: readonly { payload: unknown; availableAt?: Date | undefined }[];
}

/**
 * Inserts messages (each visible from its `availableAt`, else now) and
 * notifies listeners of the queue (delivered at commit). Returns their ids in order.
 */
export async function messagesInsert(db: Db, p: InsertParams): Promise<string[]> {
  if (p.messages.length === 0) return [];
  const json = p.messages.map((m) => JSON.stringify(m.payload));
  const ats = p.messages.map((m) => m.availableAt?.toISOString() ?? null);
  const rows = await db`
    WITH inserted AS (
      INSERT INTO state.queue_messages (queue_name, payload, available_at)
      SELECT ${p.queue}, m.payload, coalesce(m.at, now())
      FROM unnest(${json}::text[]::jsonb[], ${ats}::text[]::timestamptz[]) AS m(payload, at)
      RETURNING id
    ), notified AS (
      SELECT pg_notify(${NOTIFY_CHANNEL}, ${p.queue})
    )
    SELECT id::text AS id FROM inserted, notified`;
  return rows.map((r) => String(r.id));
}

export interface ReceiveParams {
  queue: string;
  max: number;
  visibilityTimeoutMs: number;
  /** A message already received this many times goes to `<queue>.dlq` instead. */
  maxReceives: number;
  dlq: string;
}

/**
 * Takes up to `max` visible messages with SKIP LOCKED, increments their
 * `receive_count` and hides them for the visibility timeout in the same
 * statement. Messages past `maxReceives` are moved to the dead-letter queue in
 * that statement too, keeping their last error, and are not returned.
 */
export async function messagesReceive(db: Db, p: ReceiveParams): Promise<MessageRow[]> {
  const rows = await db`
    WITH candidates AS (
      SELECT id, receive_count FROM state.queue_messages
      WHERE queue_name = ${p.queue} AND queue_name NOT LIKE '%.dlq' AND available_at <= now()
      ORDER BY available_at, id
      LIMIT ${p.max}
      FOR UPDATE SKIP LOCKED
    ), exhausted AS (
      UPDATE state.queue_messages m
      SET queue_name = ${p.dlq},
          last_error = coalesce(m.last_error, 'no error recorded') || ' (dead-lettered after ' || m.receive_count || ' receives)',
          available_at = now()
      FROM candidates c
      WHERE m.id = c.id AND c.receive_count >= ${p.maxReceives}
      RETURNING m.id
    )
    UPDATE state.queue_messages m
    SET receive_count = m.receive_count + 1,
        available_at = now() + make_interval(secs => ${p.visibilityTimeoutMs}::double precision / 1000)
    FROM candidates c
    WHERE m.id = c.id AND c.receive_count < ${p.maxReceives}
    RETURNING m.id::text AS id, m.queue_name, m.payload, m.receive_count, m.last_error, m.created_at`;
  return v.parse(MessageRows, [...rows]).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
}

/** Deletes acknowledged messages. Returns the ids that were still there. */
export async function messagesDeleteIds(db: Db, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db`
    DELETE FROM state.queue_messages WHERE id = ANY(${ids}::bigint[]) RETURNING id::text AS id`;
  return rows.map((r) => String(r.id));
}

export interface ExtendParams {
  id: string;
  /** Hide until this absolute time... */
  until?: Date;
  /** ...or for this long from the database's now. */
  visibilityTimeoutMs?: number;
}

/** Moves a message's visibility; false when it is gone (acked or dead-lettered). */
export async function messagesSetVisibility(db: Db, p: ExtendParams): Promise<boolean> {
  const until = p.until?.toISOString() ?? null;
  const ms = p.visibilityTimeoutMs ?? 0;
  const rows = await db`
    UPDATE state.queue_messages
    SET available_at = coalesce(${until}::timestamptz, now() + make_interval(secs => ${ms}::double precision / 1000))
    WHERE id = ${p.id}::bigint AND queue_name NOT LIKE '%.dlq'
    RETURNING id`;
  return rows.length === 1;
}

/** Records an error on a message without changing its visibility. */
export async function messagesRecordError(db: Db, p: { id: string; error: string }): Promise<void> {
  await db`UPDATE state.queue_messages SET last_error = ${p.error} WHERE id = ${p.id}::bigint`;
}

/** Moves one message to its dead-letter queue with the reason. */
export async function messagesDeadLetter(
  db: Db,
  p: { id: string; dlq: string; error: string },
): Promise<boolean> {
  const rows = await db`
    UPDATE state.queue_messages
    SET queue_name = ${p.dlq}, last_error = ${p.error}, available_at = now()
    WHERE id = ${p.id}::bigint AND queue_name NOT LIKE '%.dlq'
    RETURNING id`;
  return rows.length === 1;
}

/** Lists dead letters, oldest first. */
export async function messagesListDead(
  db: Db,
  p: { dlqs: readonly string[]; limit: number },
): Promise<MessageRow[]> {
  const rows = await db`
    SELECT id::text AS id, queue_name, payload, receive_count, last_error, created_at
    FROM state.queue_messages
    WHERE queue_name = ANY(${p.dlqs}::text[])
    ORDER BY id
    LIMIT ${p.limit}`;
  return v.parse(MessageRows, [...rows]);
}

/** Moves dead letters back to their queue, visible now, with a fresh receive count. */
export async function messagesRedrive(
  db: Db,
  p: { dlq: string; queue: string; id?: string },
): Promise<number> {
  const id = p.id ?? null;
  const rows = await db`
    WITH moved AS (
      UPDATE state.queue_messages
      SET queue_name = ${p.queue}, receive_count = 0, available_at = now()
      WHERE queue_name = ${p.dlq} AND (${id}::bigint IS NULL OR id = ${id}::bigint)
      RETURNING id
    ), notified AS (SELECT pg_notify(${NOTIFY_CHANNEL}, ${p.queue}))
    SELECT count(*)::int AS n FROM moved, notified`;
  return Number(rows[0]?.n ?? 0);
}

const DepthRow = v.object({
  queue_name: v.string(),
  ready: v.number(),
  in_flight: v.number(),
  delayed: v.number(),
});

/** Counts per queue name, dead-letter queues included. */
export async function messagesDepth(db: Db): Promise<Map<string, Depth>> {
  const rows = await db`
    SELECT queue_name,
           count(*) FILTER (WHERE available_at <= now())::int AS ready,
           count(*) FILTER (WHERE available_at > now() AND receive_count > 0)::int AS in_flight,
           count(*) FILTER (WHERE available_at > now() AND receive_count = 0)::int AS delayed
    FROM state.queue_messages GROUP BY queue_name`;
  const depths = new Map<string, Depth>();
  for (const row of v.parse(v.array(DepthRow), [...rows])) {
    depths.set(row.queue_name, { ready: row.ready, inFlight: row.in_flight, delayed: row.delayed });
  }
  return depths;
}
