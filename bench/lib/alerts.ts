import { randomUUID } from "node:crypto";
import type { Sql } from "../../src/db/connect";
import { AlertRows } from "../../src/sink/rows";
import { BatchValidator } from "../../src/sink/validate";

/**
 * The sink workload's data: `count` alerts in JSONL batches of `LINES` lines,
 * one batch per task of org "bench", shaped like real alerts (attributes
 * object, RFC 3339 time). Every sink subject builds the same rows from them.
 */

export const LINES = 1000;
export const ORG = "bench";
const SEVERITIES = ["info", "low", "medium", "high", "critical"];

export interface Batch {
  task: string;
  body: string;
}

function line(task: string, i: number): string {
  return JSON.stringify({
    dedupe_key: `${task}:${i}`,
    org_id: ORG,
    source: "bench",
    severity: SEVERITIES[i % 5],
    title: `alert ${i} of task ${task}`,
    occurred_at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
    attributes: { index: i, host: `host-${i % 17}`, tags: ["a", "b"] },
  });
}

export function makeBatches(count: number): Batch[] {
  const out: Batch[] = [];
  for (let done = 0; done < count; done += LINES) {
    const task = randomUUID();
    const n = Math.min(LINES, count - done);
    out.push({ task, body: Array.from({ length: n }, (_, i) => `${line(task, i)}\n`).join("") });
  }
  return out;
}

/** Columns of a batch as the sink's validation makes them (for the bare insert, untimed). */
export function columnsOf(b: Batch) {
  // As big batches are held (packed), whatever this batch's size: they come out as columns.
  const v = new BatchValidator(ORG, Number.POSITIVE_INFINITY);
  const failure = v.push(new TextEncoder().encode(b.body));
  const check = failure === undefined ? v.end() : { ok: false as const, failure };
  if (!check.ok) throw new Error(check.failure.reason);
  if (!(check.rows instanceof AlertRows)) throw new Error("rows not packed");
  const [columns] = check.rows.columns(check.rows.keyOrder(), Infinity, Infinity);
  if (columns === undefined) throw new Error("an empty batch");
  return columns;
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < items.length; i = next++) {
        const item = items[i];
        if (item !== undefined) await work(item);
      }
    }),
  );
}

/** Throws unless the reference subject stored exactly `count` rows. */
export async function expectStoredRows(sql: Sql, count: number): Promise<void> {
  const [row] = await sql`SELECT count(*)::int AS n FROM data.alert_events`;
  if (Number(row?.n) !== count) throw new Error(`stored ${row?.n} of ${count}`);
}
