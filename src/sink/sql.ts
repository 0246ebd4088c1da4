import * as v from "valibot";
import type { Db, Sql } from "../db/connect";
import { type AlertColumns, type AlertRows, emptyColumns } from "./rows";

/**
 * The sink's SQL on the DATA database, one named function per operation.
 * A batch is one transaction: its rows in `data.alert_events` and its
 * `data.sink_batches` row commit together or not at all.
 */

export interface BatchInsertParams {
  taskId: string;
  /** The task's org from the dispatcher's record, never the batch's word (invariant 6). */
  orgId: string;
  attempt: number;
  batchUri: string;
  rows: AlertRows;
}

const Counts = v.object({ rows_inserted: v.number(), rows_skipped: v.number() });
export type BatchCounts = { rowsInserted: number; rowsSkipped: number };

/** Rows per statement: a batch of more goes in several statements of one transaction. */
const CHUNK_ROWS = 5_000;
/** About this many bytes of rows per statement (their serialized parameters are about as large). */
const CHUNK_BYTES = 1024 * 1024;

interface ChunkParams {
  p: BatchInsertParams;
  c: AlertColumns;
  /** On the batch's last chunk: rows inserted by its earlier chunks, and its size. */
  last?: { inserted: number; total: number };
}

/**
 * One chunk, in key order ("C" collation: UTF-8 bytes), then the order of its
 * arrays (WITH ORDINALITY), skipping keys its org already has. The last chunk records the batch in `data.sink_batches`
 * in the same statement.
 */
async function alertEventsInsertChunk(db: Db, { p, c, last }: ChunkParams): Promise<number> {
  const rows = await db`
    WITH inserted AS (
      INSERT INTO data.alert_events
        (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
      SELECT u.dedupe_key, ${p.orgId}, ${p.taskId}::uuid, u.source, u.severity::data.severity,
             u.title, u.occurred_at::timestamptz, u.attributes::jsonb
      FROM unnest(
        ${c.dedupeKeys}::text[], ${c.sources}::text[], ${c.severities}::text[],
        ${c.titles}::text[], ${c.occurredAts}::text[], ${c.attributes}::text[]
      ) WITH ORDINALITY AS u(dedupe_key, source, severity, title, occurred_at, attributes, n)
      ORDER BY u.dedupe_key COLLATE "C", u.n
      ON CONFLICT (org_id, dedupe_key) DO NOTHING
      RETURNING 1
    )${
      last === undefined
        ? db`SELECT count(*)::int AS rows_inserted, 0 AS rows_skipped FROM inserted`
        : db`
    INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
    SELECT ${p.taskId}::uuid, ${p.orgId}, ${p.attempt}, ${p.batchUri},
           ${last.inserted}::int + count(*)::int, ${last.total}::int - ${last.inserted}::int - count(*)::int
    FROM inserted
    RETURNING rows_inserted, rows_skipped`
    }`;
  return v.parse(Counts, rows[0]).rows_inserted;
}

/**
 * Inserts a validated batch `ON CONFLICT (org_id, dedupe_key) DO NOTHING`
 * (duplicates inside the batch are skipped the same way) and records it in
 * `data.sink_batches`, in one transaction. A dedupe key is scoped to its
 * org: another org's row with the same key never suppresses this one.
 * Rows go in key order across the whole batch (UTF-8 bytes, the "C"
 * collation; first line wins among repeats), so two sinks writing
 * overlapping batches take their row locks in the same order and cannot
 * deadlock. A batch of one chunk is one statement; a larger one is a
 * statement per chunk, so no statement's parameters grow with the batch.
 * Arrays travel as text (ISO strings, JSON text) and are cast server-side:
 * postgres.js would send a Date[] as one timestamptz and double-encode objects.
 */
export async function alertEventsInsertBatch(db: Sql, p: BatchInsertParams): Promise<BatchCounts> {
  const total = p.rows.count;
  // One chunk: the statement orders its rows itself. Several: sorted here, so
  // that the chunks follow each other in key order too.
  const one = total <= CHUNK_ROWS && p.rows.bytes <= CHUNK_BYTES;
  const order = one ? p.rows.lineOrder() : p.rows.keyOrder();
  const chunks = p.rows.columns(order, CHUNK_ROWS, CHUNK_BYTES);
  const counted = (inserted: number): BatchCounts => ({
    rowsInserted: inserted,
    rowsSkipped: total - inserted,
  });
  const first = chunks.next();
  let current = first.done === true ? emptyColumns() : first.value;
  let next = chunks.next();
  if (next.done === true) {
    return counted(
      await alertEventsInsertChunk(db, { p, c: current, last: { inserted: 0, total } }),
    );
  }
  return db.begin(async (tx) => {
    let inserted = 0;
    while (next.done !== true) {
      inserted += await alertEventsInsertChunk(tx, { p, c: current });
      current = next.value;
      next = chunks.next();
    }
    return counted(await alertEventsInsertChunk(tx, { p, c: current, last: { inserted, total } }));
  });
}
