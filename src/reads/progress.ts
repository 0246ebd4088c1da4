import * as v from "valibot";
import type { Db } from "../db/connect";

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
  dead: v.number(),
  pending: v.number(),
});

/** Demo tasks by outcome, dead letters, and messages or outbox rows still to go (state database). */
export async function demoTaskProgress(state: Db, ids: readonly string[]) {
  const [row] = await state`
    SELECT
      (SELECT count(*) FROM state.tasks WHERE id = ANY(${ids}::uuid[]) AND status = 'succeeded')::int AS succeeded,
      (SELECT count(*) FROM state.tasks WHERE id = ANY(${ids}::uuid[]) AND status = 'failed')::int AS failed,
      (SELECT count(*) FROM state.queue_messages WHERE queue_name LIKE '%.dlq')::int AS dead,
      ((SELECT count(*) FROM state.queue_messages WHERE queue_name = 'buffer_queue')
        + (SELECT count(*) FROM state.outbox WHERE status = 'pending'))::int AS pending`;
  return v.parse(Counts, row);
}

/** Alert rows ingested for the demo's tasks (data database). */
export async function demoRowCount(data: Db, ids: readonly string[]): Promise<number> {
  const [row] = await data`
    SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ANY(${ids}::uuid[])`;
  return v.parse(v.object({ n: v.number() }), row).n;
}

export async function demoProgress(
  state: Db,
  data: Db,
  ids: readonly string[],
): Promise<DemoProgress> {
  const [counts, rows] = await Promise.all([demoTaskProgress(state, ids), demoRowCount(data, ids)]);
  return {
    total: ids.length,
    succeeded: counts.succeeded,
    failed: counts.failed,
    rows,
    deadLetters: counts.dead,
    pendingWork: counts.pending,
  };
}
