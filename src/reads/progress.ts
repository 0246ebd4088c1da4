import * as v from "valibot";
import type { Db } from "../db/connect";
import type { QueueAdmin } from "../queue/seam";

/** What `harness up --demo` watches: read-only queries on the demo's own tasks. */

export interface DemoProgress {
  total: number;
  succeeded: number;
  failed: number;
  rows: number;
  deadLetters: number;
  pendingWork: number;
}

const Counts = v.object({
  succeeded: v.number(),
  failed: v.number(),
  pending: v.number(),
});

/** Demo tasks by outcome, and outbox rows still to publish (state database). */
export async function demoTaskProgress(state: Db, ids: readonly string[]) {
  const [row] = await state`
    SELECT
      (SELECT count(*) FROM state.tasks WHERE id = ANY(${ids}::uuid[]) AND status = 'succeeded')::int AS succeeded,
      (SELECT count(*) FROM state.tasks WHERE id = ANY(${ids}::uuid[]) AND status = 'failed')::int AS failed,
      (SELECT count(*) FROM state.outbox WHERE status = 'pending')::int AS pending`;
  return v.parse(Counts, row);
}

/** Alert rows ingested for the demo's tasks (data database). */
export async function demoRowCount(data: Db, ids: readonly string[]): Promise<number> {
  const [row] = await data`
    SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ANY(${ids}::uuid[])`;
  return v.parse(v.object({ n: v.number() }), row).n;
}

/**
 * The demo's progress. Dead letters and buffer messages still to ingest come
 * from the queues' own depths (the seam), so they count on either backend.
 */
export async function demoProgress(
  from: { state: Db; data: Db; queues: QueueAdmin },
  ids: readonly string[],
): Promise<DemoProgress> {
  const [counts, rows, depths] = await Promise.all([
    demoTaskProgress(from.state, ids),
    demoRowCount(from.data, ids),
    from.queues.depths(),
  ]);
  const buffers = depths
    .filter((d) => d.queue === "buffer_queue")
    .reduce((n, d) => n + d.ready + d.inFlight + d.delayed, 0);
  return {
    total: ids.length,
    succeeded: counts.succeeded,
    failed: counts.failed,
    rows,
    deadLetters: depths.reduce((n, d) => n + d.dead, 0),
    pendingWork: counts.pending + buffers,
  };
}
