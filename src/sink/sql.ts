import * as v from "valibot";
import type { Db, Sql } from "../db/connect";
import { type AlertColumns, AlertList, type AlertRows, emptyColumns } from "./rows";

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
  rows: AlertRows | AlertList;
}

const Counts = v.object({ rows_inserted: v.number(), rows_skipped: v.number() });
export type BatchCounts = { rowsInserted: number; rowsSkipped: number };

/** The counts a `data.sink_batches` insert returned; undefined when it wrote no row. */
function recordedCounts(rows: readonly unknown[]): BatchCounts | undefined {
  if (rows.length === 0) return undefined;
  const c = v.parse(Counts, rows[0]);
  return { rowsInserted: c.rows_inserted, rowsSkipped: c.rows_skipped };
}

/** Rows per statement: a batch of more goes in several statements of one transaction. */
const CHUNK_ROWS = 5_000;
/**
 * A later attempt's batch of at least this many rows has its keys looked up
 * first (sinkBatchesInsertIfAllStored): one more statement for a new batch,
 * worth it when the rows an earlier attempt stored are then not cast again.
 * A smaller batch costs more in the statement than in its rows. A first
 * attempt's batch is not looked up: its rows are new unless the batch itself
 * is delivered again, and that is found before, by its record
 * (sinkBatchesRecordAgain); the look-up cost fresh 1,000-line batches 7-9 %
 * of their rate (alternating sink-ingest rounds).
 */
const LOOK_UP_FIRST_ROWS = 256;
/** About this many bytes of rows per statement (their serialized parameters are about as large). */
const CHUNK_BYTES = 1024 * 1024;

/**
 * A chunk's columns as the server reads them, one set-returning function
 * each, for `ROWS FROM (…)`: every text column goes as one JSON array
 * (JSON.stringify escapes it natively; a text[] literal postgres.js escapes
 * element by element in JavaScript), and the attributes, JSON already, as
 * one JSON array of them, so the server parses each once, straight to jsonb.
 */
function alertColumnsFrom(db: Db, c: AlertColumns) {
  return db`
        jsonb_array_elements_text(${JSON.stringify(c.dedupeKeys)}::text::jsonb),
        jsonb_array_elements_text(${JSON.stringify(c.sources)}::text::jsonb),
        jsonb_array_elements_text(${JSON.stringify(c.severities)}::text::jsonb),
        jsonb_array_elements_text(${JSON.stringify(c.titles)}::text::jsonb),
        jsonb_array_elements_text(${JSON.stringify(c.occurredAts)}::text::jsonb),
        jsonb_array_elements(${`[${c.attributes.join(",")}]`}::text::jsonb)`;
}

interface ChunkParams {
  p: BatchInsertParams;
  c: AlertColumns;
  /** On the batch's last chunk: rows inserted by its earlier chunks, and its size. */
  last?: { inserted: number; total: number };
}

/**
 * One chunk, in key order ("C" collation: UTF-8 bytes), then the order of its
 * arrays (WITH ORDINALITY), skipping keys its org already has. The last chunk
 * records the batch in `data.sink_batches` in the same statement.
 */
async function alertEventsInsertChunk(db: Db, { p, c, last }: ChunkParams): Promise<number> {
  const rows = await db`
    WITH inserted AS (
      INSERT INTO data.alert_events
        (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
      SELECT u.dedupe_key, ${p.orgId}, ${p.taskId}::uuid, u.source, u.severity::data.severity,
             u.title, u.occurred_at::timestamptz, u.attributes
      FROM ROWS FROM (${alertColumnsFrom(db, c)})
        WITH ORDINALITY AS u(dedupe_key, source, severity, title, occurred_at, attributes, n)
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
 * A batch whose every key its org has already (a redelivered batch, another
 * attempt of a task) inserts no row: then only its `data.sink_batches` row
 * is written, by a statement that is sent the keys alone and looks each up
 * on the primary key, rather than casting every row for ON CONFLICT to skip
 * it (the bare insert's cost, and most of the sink's, on such a batch).
 * Undefined (and nothing written) when a key is missing: the look-ups stop
 * at the first, and the batch goes the ordinary way. No row of
 * data.alert_events is ever deleted, so a key found stays stored, and the
 * counts are the ones the insert would have made: 0 inserted, all skipped.
 */
async function sinkBatchesInsertIfAllStored(
  db: Db,
  p: BatchInsertParams,
  keys: string[],
): Promise<BatchCounts | undefined> {
  const rows = await db`
    INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
    SELECT ${p.taskId}::uuid, ${p.orgId}, ${p.attempt}, ${p.batchUri}, 0, ${keys.length}::int
    WHERE NOT EXISTS (
      SELECT FROM jsonb_array_elements_text(${JSON.stringify(keys)}::text::jsonb) AS k(dedupe_key)
      WHERE (SELECT true FROM data.alert_events e
             WHERE e.org_id = ${p.orgId} AND e.dedupe_key = k.dedupe_key) IS NULL)
    RETURNING rows_inserted, rows_skipped`;
  return recordedCounts(rows);
}

/** The batch a message names, as `data.sink_batches` records it. */
type BatchIdentity = Omit<BatchInsertParams, "rows">;

/**
 * A batch this sink has committed before — the same task, org, attempt and
 * URI: its message redelivered after a lost ack, or published twice by the
 * outbox — is recorded again as adding nothing (0 inserted, every row of its
 * first record skipped), without being fetched, validated or looked up key
 * by key. A record exists only if that batch's rows committed with it, and
 * no row of data.alert_events is ever deleted, so these are the counts a
 * second ingest of the same bytes would make; bytes put under that URI
 * since are never taken: a batch is ingested once. Undefined, and nothing
 * written, when there is no record.
 */
export async function sinkBatchesRecordAgain(
  db: Sql,
  p: BatchIdentity,
): Promise<BatchCounts | undefined> {
  const rows = await db`
    INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
    SELECT task_id, org_id, attempt, batch_uri, 0, rows_inserted + rows_skipped
    FROM data.sink_batches
    WHERE task_id = ${p.taskId}::uuid AND org_id = ${p.orgId} AND attempt = ${p.attempt}
      AND batch_uri = ${p.batchUri}
    LIMIT 1
    RETURNING rows_inserted, rows_skipped`;
  return recordedCounts(rows);
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
 * The rows travel as a JSON array per column (alertColumnsFrom; times and
 * severities cast by the server). As six text arrays, which postgres.js
 * escapes element by element, they cost the sink 0.6-0.9 ms more of CPU per
 * 1,000 rows and the server 0-0.3 ms less; one JSON text of whole rows
 * read through jsonb_to_recordset cost the server about twice as much.
 * postgres.js would send a Date[] as one timestamptz and encode objects
 * twice, hence text.
 */
export async function alertEventsInsertBatch(db: Sql, p: BatchInsertParams): Promise<BatchCounts> {
  const total = p.rows.count;
  const counted = (inserted: number): BatchCounts => ({
    rowsInserted: inserted,
    rowsSkipped: total - inserted,
  });
  if (p.rows instanceof AlertList) {
    if (total >= LOOK_UP_FIRST_ROWS && p.attempt > 1) {
      const stored = await sinkBatchesInsertIfAllStored(db, p, p.rows.keys);
      if (stored !== undefined) return stored;
    }
    const c = p.rows.columns();
    return counted(await alertEventsInsertChunk(db, { p, c, last: { inserted: 0, total } }));
  }
  // One chunk: the statement orders its rows itself. Several: sorted here, so
  // that the chunks follow each other in key order too.
  const packed = p.rows;
  const one = total <= CHUNK_ROWS && packed.bytes <= CHUNK_BYTES;
  const order = one ? packed.lineOrder() : packed.keyOrder();
  const chunks = packed.columns(order, CHUNK_ROWS, CHUNK_BYTES);
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

/** A group statement's answer: each batch's place in the group (from 1) and the rows it inserted. */
const GroupCounts = v.array(v.object({ bn: v.number(), rows_inserted: v.number() }));

/**
 * Several small batches in one statement and one transaction, each exactly
 * as alertEventsInsertBatch writes it alone: its rows under its own task and
 * org, skipping keys its org has (or an earlier batch of the group brings),
 * and its own `data.sink_batches` row with its counts; the counts come back
 * in the order given. The batches' rows travel as one set of columns, each
 * row with its batch's place. Rows go in (org, key) order over the whole group ("C"
 * collation), the order a single batch's statement takes within its one org,
 * so no two sink statements can deadlock; among repeats of a key the
 * earliest batch, then line, wins, as if the batches had gone one by one.
 * Either every batch of the group commits or none does.
 */
export async function alertEventsInsertGroup(
  db: Sql,
  group: BatchInsertParams[],
): Promise<BatchCounts[]> {
  const c = emptyColumns();
  const bns: number[] = [];
  for (const [i, p] of group.entries()) {
    if (!(p.rows instanceof AlertList)) throw new Error("a group holds small batches only");
    p.rows.columns(c);
    for (let n = 0; n < p.rows.count; n++) bns.push(i + 1);
  }
  const rows = await db`
    WITH b AS (
      SELECT * FROM unnest(${group.map((p) => p.taskId)}::uuid[], ${group.map((p) => p.orgId)}::text[],
                           ${group.map((p) => p.attempt)}::int[], ${group.map((p) => p.batchUri)}::text[],
                           ${group.map((p) => p.rows.count)}::int[])
        WITH ORDINALITY AS b(task_id, org_id, attempt, batch_uri, total, bn)
    ), firsts AS MATERIALIZED (
      SELECT DISTINCT ON (b.org_id COLLATE "C", u.dedupe_key COLLATE "C")
             b.bn, b.org_id, b.task_id, u.dedupe_key, u.source, u.severity, u.title, u.occurred_at, u.attributes
      FROM ROWS FROM (unnest(${bns}::int[]), ${alertColumnsFrom(db, c)})
        WITH ORDINALITY AS u(bn, dedupe_key, source, severity, title, occurred_at, attributes, n)
      JOIN b ON b.bn = u.bn
      ORDER BY b.org_id COLLATE "C", u.dedupe_key COLLATE "C", b.bn, u.n
    ), inserted AS (
      INSERT INTO data.alert_events
        (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
      SELECT f.dedupe_key, f.org_id, f.task_id, f.source, f.severity::data.severity, f.title,
             f.occurred_at::timestamptz, f.attributes
      FROM firsts f
      ORDER BY f.org_id COLLATE "C", f.dedupe_key COLLATE "C"
      ON CONFLICT (org_id, dedupe_key) DO NOTHING
      RETURNING org_id, dedupe_key
    ), credited AS (
      SELECT f.bn, count(*)::int AS n FROM inserted i
      JOIN firsts f ON f.org_id = i.org_id AND f.dedupe_key = i.dedupe_key
      GROUP BY f.bn
    ), counted AS (
      SELECT b.*, coalesce(c.n, 0) AS rows_inserted FROM b LEFT JOIN credited c ON c.bn = b.bn
    ), recorded AS (
      INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
      SELECT task_id, org_id, attempt, batch_uri, rows_inserted, total - rows_inserted
      FROM counted ORDER BY bn
    )
    SELECT bn::int, rows_inserted FROM counted ORDER BY bn`;
  const counts = v.parse(GroupCounts, rows);
  return group.map((p, i) => {
    const inserted = counts[i]?.rows_inserted;
    if (counts[i]?.bn !== i + 1 || inserted === undefined) {
      throw new Error(`writing a group of ${group.length} batches: no counts for ${p.batchUri}`);
    }
    return { rowsInserted: inserted, rowsSkipped: p.rows.count - inserted };
  });
}
