import * as v from "valibot";
import type { Db } from "../../db/connect";
import type { Depth } from "../seam";

/**
 * The SQL of `state.queue_messages`, one named function per operation.
 * Visibility is decided by the database clock, in the queue's SQL functions
 * (drizzle/state/0008_queue_functions.sql): every write goes through them,
 * whoever calls — the worker and the sink hold no privilege on the table
 * and reach only their own queue; the dispatcher may only publish.
 */

/** The channel queue_publish and queue_redrive notify (the same literal in their SQL). */
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
/** Messages in id order, the order they were published in. */
const byId = (a: MessageRow, b: MessageRow) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1);

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
    SELECT id::text AS id
    FROM state.queue_publish(${p.queue}, ${json}::text[]::jsonb[], ${ats}::text[]::timestamptz[]) AS id`;
  return rows.map((r) => String(r.id));
}

export interface ReceiveParams {
  queue: string;
  max: number;
  visibilityTimeoutMs: number;
  /** A message already received this many times goes to `<queue>.dlq` instead. */
  maxReceives: number;
}

/**
 * Takes up to `max` visible messages with SKIP LOCKED, increments their
 * `receive_count` and hides them for the visibility timeout in the same
 * statement. Messages past `maxReceives` are moved to the dead-letter queue in
 * that statement too, keeping their last error, and are not returned.
 */
export async function messagesReceive(db: Db, p: ReceiveParams): Promise<MessageRow[]> {
  const rows = await db`
    SELECT id::text AS id, queue_name, payload, receive_count, last_error, created_at
    FROM state.queue_receive(${p.queue}, ${p.max}, ${p.visibilityTimeoutMs}, ${p.maxReceives})`;
  return v.parse(MessageRows, [...rows]).sort(byId);
}

const AckedOrReceived = v.array(
  v.variant("acked", [
    v.object({ acked: v.literal(true), id: v.string() }),
    v.object({ acked: v.literal(false), ...MessageRow.entries }),
  ]),
);

/**
 * Acks `ids` of `queue`, then receives up to `max` of its messages as
 * messagesReceive does, in one statement and one commit: a consumer's calls
 * made while its last statement ran (./consumer.ts). The receive waits on
 * the count of acked rows, so the acks are done before it looks: a message
 * acked here is never handed out again by the same statement. Returns the
 * acked ids that were still there, and the messages received in id order.
 */
export async function messagesAckThenReceive(
  db: Db,
  p: ReceiveParams & { ids: readonly string[] },
): Promise<{ acked: string[]; received: MessageRow[] }> {
  if (p.ids.length === 0) return { acked: [], received: await messagesReceive(db, p) };
  if (p.max <= 0) return { acked: await messagesDeleteIds(db, p), received: [] };
  const rows = await db`
    WITH acked AS MATERIALIZED (
      SELECT id FROM state.queue_ack(${p.queue}, ${p.ids}::bigint[]) AS id
    )
    SELECT true AS acked, id::text AS id, NULL::text AS queue_name, NULL::jsonb AS payload,
           NULL::int AS receive_count, NULL::text AS last_error, NULL::timestamptz AS created_at
    FROM acked
    UNION ALL
    SELECT false, r.id::text, r.queue_name, r.payload, r.receive_count, r.last_error, r.created_at
    FROM (SELECT count(*)::int AS n FROM acked) AS done,
         LATERAL state.queue_receive(${p.queue}, ${p.max}::int + 0 * done.n,
                                     ${p.visibilityTimeoutMs}, ${p.maxReceives}) AS r`;
  const acked: string[] = [];
  const received: MessageRow[] = [];
  for (const row of v.parse(AckedOrReceived, [...rows])) {
    if (row.acked) acked.push(row.id);
    else received.push(row);
  }
  return { acked, received: received.sort(byId) };
}

/** Deletes acknowledged messages of `queue`. Returns the ids that were still there. */
async function messagesDeleteIds(
  db: Db,
  p: { queue: string; ids: readonly string[] },
): Promise<string[]> {
  if (p.ids.length === 0) return [];
  const rows = await db`
    SELECT id::text AS id FROM state.queue_ack(${p.queue}, ${p.ids}::bigint[]) AS id`;
  return rows.map((r) => String(r.id));
}

export interface ExtendParams {
  queue: string;
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
  const [row] = await db`
    SELECT state.queue_extend(${p.queue}, ${p.id}::bigint, ${until}::timestamptz, ${ms}) AS ok`;
  return row?.ok === true;
}

/** Records an error on a message without changing its visibility. */
export async function messagesRecordError(
  db: Db,
  p: { queue: string; id: string; error: string },
): Promise<void> {
  await db`SELECT state.queue_record_error(${p.queue}, ${p.id}::bigint, ${p.error})`;
}

/** Moves one message of `queue` to `<queue>.dlq` with the reason. */
export async function messagesDeadLetter(
  db: Db,
  p: { queue: string; id: string; error: string },
): Promise<boolean> {
  const [row] = await db`
    SELECT state.queue_dead_letter(${p.queue}, ${p.id}::bigint, ${p.error}) AS ok`;
  return row?.ok === true;
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
export async function messagesRedrive(db: Db, p: { queue: string; id?: string }): Promise<number> {
  const [row] = await db`
    SELECT state.queue_redrive(${p.queue}, ${p.id ?? null}::bigint) AS n`;
  return Number(row?.n ?? 0);
}

const Counts = v.object({ ready: v.number(), in_flight: v.number(), delayed: v.number() });
const DepthRow = v.object({ queue_name: v.string(), ...Counts.entries });

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

/** One queue's counts, through its consumer's function (the consumer may read nothing else). */
export async function messagesDepthOf(db: Db, p: { queue: string }): Promise<Depth> {
  const [row] = await db`SELECT ready, in_flight, delayed FROM state.queue_depth(${p.queue})`;
  const c = v.parse(Counts, row);
  return { ready: c.ready, inFlight: c.in_flight, delayed: c.delayed };
}
