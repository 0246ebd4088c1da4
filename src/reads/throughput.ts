import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * The overview's throughput chart: tasks finished and rows ingested per
 * bucket of `bucketSeconds`, between two times. Bucket `b` holds
 * `[b, b + bucketSeconds)` in epoch seconds. Bounded by the range:
 * `tasks_finished_idx` (finished rows only) and `sink_batches_committed_idx`
 * are range-scanned; the dashboard asks for a short range at a time
 * (src/ui/throughput.ts).
 */

export interface BucketRange {
  bucketSeconds: number;
  /** Epoch seconds, multiples of bucketSeconds; `from` included, `to` not. */
  from: number;
  to: number;
}

const Buckets = v.array(v.object({ bucket: v.number(), n: v.number() }));
export type Buckets = v.InferOutput<typeof Buckets>;

/** Tasks that reached `succeeded` or `failed`, per bucket (empty buckets left out). */
export async function tasksFinishedBuckets(db: Db, r: BucketRange): Promise<Buckets> {
  const rows = await db`
    SELECT (floor(extract(epoch FROM finished_at) / ${r.bucketSeconds}) * ${r.bucketSeconds})::float8 AS bucket,
           count(*)::int AS n
    FROM state.tasks
    WHERE finished_at >= to_timestamp(${r.from}) AND finished_at < to_timestamp(${r.to})
    GROUP BY 1`;
  return v.parse(Buckets, [...rows]);
}

/** Alert rows the sinks inserted (duplicates skipped), per bucket (empty buckets left out). */
export async function rowsIngestedBuckets(db: Db, r: BucketRange): Promise<Buckets> {
  const rows = await db`
    SELECT (floor(extract(epoch FROM committed_at) / ${r.bucketSeconds}) * ${r.bucketSeconds})::float8 AS bucket,
           sum(rows_inserted)::float8 AS n
    FROM data.sink_batches
    WHERE committed_at >= to_timestamp(${r.from}) AND committed_at < to_timestamp(${r.to})
    GROUP BY 1`;
  return v.parse(Buckets, [...rows]);
}

/** The database's clock, epoch seconds. */
export async function dbNow(db: Db): Promise<number> {
  const [row] = await db`SELECT extract(epoch FROM now())::float8 AS now`;
  return v.parse(v.object({ now: v.number() }), row).now;
}
