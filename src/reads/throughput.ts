import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * The overview's throughput chart: tasks finished and rows ingested in each
 * `bucketSeconds` of the last `windowSeconds`, by each database's clock.
 * Bounded by the window: `tasks_finished_idx` (finished rows only) and
 * `sink_batches_committed_idx` are range-scanned from `now() - window`.
 */

export interface Window {
  bucketSeconds: number;
  windowSeconds: number;
}

const Buckets = v.array(v.object({ ago: v.number(), n: v.number() }));

/** Per-bucket totals, oldest first; the last bucket ends now. */
function toSeries(rows: unknown, w: Window): number[] {
  const count = Math.ceil(w.windowSeconds / w.bucketSeconds);
  const series = new Array<number>(count).fill(0);
  for (const r of v.parse(Buckets, rows)) {
    const i = count - 1 - r.ago;
    if (i >= 0 && i < count) series[i] = r.n;
  }
  return series;
}

/** Tasks that reached `succeeded` or `failed`, per bucket. */
export async function tasksFinishedSeries(db: Db, w: Window): Promise<number[]> {
  const rows = await db`
    WITH clock AS (SELECT now() AS now)
    SELECT floor(extract(epoch FROM clock.now - t.finished_at) / ${w.bucketSeconds})::int AS ago,
           count(*)::int AS n
    FROM state.tasks t, clock
    WHERE t.finished_at > clock.now - make_interval(secs => ${w.windowSeconds})
      AND t.finished_at <= clock.now
    GROUP BY 1`;
  return toSeries([...rows], w);
}

/** Alert rows the sinks inserted (duplicates skipped), per bucket. */
export async function rowsIngestedSeries(db: Db, w: Window): Promise<number[]> {
  const rows = await db`
    WITH clock AS (SELECT now() AS now)
    SELECT floor(extract(epoch FROM clock.now - b.committed_at) / ${w.bucketSeconds})::int AS ago,
           sum(b.rows_inserted)::float8 AS n
    FROM data.sink_batches b, clock
    WHERE b.committed_at > clock.now - make_interval(secs => ${w.windowSeconds})
      AND b.committed_at <= clock.now
    GROUP BY 1`;
  return toSeries([...rows], w);
}
