/**
 * What one sink process did, for its logs and its final summary line. The
 * durable counts (rows inserted / skipped per committed batch) live in
 * `data.sink_batches`, which `harness status` reads (see alertTotals in src/reads/status.ts).
 */
export interface SinkMetrics {
  /** Batches committed (including redeliveries that added nothing). */
  batches: number;
  rowsInserted: number;
  /** Rows skipped because their dedupe_key was already stored (or repeated in the batch). */
  rowsSkipped: number;
  /** Batches this process dead-lettered as poison. */
  deadLetters: number;
  /** Deliveries left to come back after their visibility timeout (transient failures). */
  retries: number;
}

export function newSinkMetrics(): SinkMetrics {
  return { batches: 0, rowsInserted: 0, rowsSkipped: 0, deadLetters: 0, retries: 0 };
}

export function summaryLine(m: SinkMetrics, elapsedMs: number): string {
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(m.rowsInserted / seconds) : 0;
  return (
    `sink: ${m.batches} batches, ${m.rowsInserted} rows inserted, ` +
    `${m.rowsSkipped} rows skipped as duplicates, ${m.deadLetters} dead letters, ` +
    `${m.retries} retries in ${seconds.toFixed(1)} s (${rate} rows/s)\n`
  );
}
