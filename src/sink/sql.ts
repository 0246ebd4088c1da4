import * as v from "valibot";
import type { Db } from "../db/connect";
import type { AlertColumns } from "./validate";

/**
 * The sink's SQL on the DATA database, one named function per operation.
 * A batch is one statement, hence one transaction: the set-based insert into
 * `data.alert_events` and its `data.sink_batches` row commit together or not at all.
 */

export interface BatchInsertParams {
  taskId: string;
  /** The task's org from the dispatcher's record, never the batch's word (invariant 6). */
  orgId: string;
  attempt: number;
  batchUri: string;
  columns: AlertColumns;
}

const Counts = v.object({ rows_inserted: v.number(), rows_skipped: v.number() });
export type BatchCounts = { rowsInserted: number; rowsSkipped: number };

/**
 * Inserts a validated batch with one `INSERT … SELECT FROM unnest(…) ON CONFLICT
 * (org_id, dedupe_key) DO NOTHING` (duplicates inside the batch are skipped the
 * same way) and records the batch in `data.sink_batches` in the same statement.
 * A dedupe key is scoped to its org: another org's row with the same key never
 * suppresses this one. Rows go in key order (one org per batch, so ordering by
 * `dedupe_key` is the key's order; first line wins among repeats), so two sinks
 * writing overlapping batches take their row locks in the same order and
 * cannot deadlock.
 * Arrays travel as text (ISO strings, JSON text) and are cast server-side:
 * postgres.js would send a Date[] as one timestamptz and double-encode objects.
 */
export async function alertEventsInsertBatch(db: Db, p: BatchInsertParams): Promise<BatchCounts> {
  const c = p.columns;
  const total = c.dedupeKeys.length;
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
    )
    INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
    SELECT ${p.taskId}::uuid, ${p.orgId}, ${p.attempt}, ${p.batchUri},
           count(*)::int, ${total}::int - count(*)::int
    FROM inserted
    RETURNING rows_inserted, rows_skipped`;
  const counts = v.parse(Counts, rows[0]);
  return { rowsInserted: counts.rows_inserted, rowsSkipped: counts.rows_skipped };
}
