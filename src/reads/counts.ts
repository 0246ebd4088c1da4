import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * Counts for the dashboard's overview that stay bounded however large the
 * tables grow: each counts at most `cap + 1` index entries (or rows), so a
 * count is exact up to the cap; above it the planner's statistics give an
 * estimate (`exact: false`). An exact `count(*)` of 1,000,000 tasks takes
 * 100–150 ms here, a count capped at 100,000 still 20–60 ms; at 5,000, a
 * few milliseconds per status.
 */

export const COUNT_CAP = 5_000;

export interface Count {
  n: number;
  /** False when the count reached the cap and `n` is the planner's estimate (at least cap + 1). */
  exact: boolean;
}

const N = v.object({ n: v.number() });

function capped(n: number, cap: number, estimate: number | null): Count {
  if (n <= cap) return { n, exact: true };
  return { n: Math.max(cap + 1, Math.round(estimate ?? 0)), exact: false };
}

const StatusCounts = v.array(v.object({ status: v.string(), n: v.number() }));
const StatusStats = v.object({
  total: v.nullable(v.number()),
  vals: v.nullable(v.array(v.string())),
  freqs: v.nullable(v.array(v.number())),
});

/** The planner's idea of how many tasks have each status, from the last ANALYZE. */
async function taskStatusEstimates(db: Db): Promise<Map<string, number>> {
  const [row] = await db`
    SELECT (SELECT reltuples::float8 FROM pg_class WHERE oid = 'state.tasks'::regclass) AS total,
           (SELECT most_common_vals::text::text[] FROM pg_stats
             WHERE schemaname = 'state' AND tablename = 'tasks' AND attname = 'status') AS vals,
           (SELECT most_common_freqs::float8[] FROM pg_stats
             WHERE schemaname = 'state' AND tablename = 'tasks' AND attname = 'status') AS freqs`;
  const s = v.parse(StatusStats, row);
  const out = new Map<string, number>();
  if (s.total === null || s.total < 0 || s.vals === null || s.freqs === null) return out;
  for (const [i, status] of s.vals.entries()) out.set(status, (s.freqs[i] ?? 0) * s.total);
  return out;
}

/** Tasks by status (every status of the enum, zero when none), each counted up to `cap`. */
export async function taskCountsCapped(
  db: Db,
  p: { cap?: number } = {},
): Promise<Record<string, Count>> {
  const cap = p.cap ?? COUNT_CAP;
  const rows = await db`
    SELECT s::text AS status,
           (SELECT count(*) FROM (SELECT 1 FROM state.tasks t WHERE t.status = s LIMIT ${cap + 1}) x)::int AS n
    FROM unnest(enum_range(NULL::state.task_status)) AS s`;
  const counts = v.parse(StatusCounts, [...rows]);
  const over = counts.some((c) => c.n > cap);
  const estimates = over ? await taskStatusEstimates(db) : new Map<string, number>();
  return Object.fromEntries(
    counts.map((c) => [c.status, capped(c.n, cap, estimates.get(c.status) ?? null)]),
  );
}

/** Outbox rows waiting to be published, up to `cap` (above it, only a lower bound). */
export async function outboxPendingCapped(db: Db, p: { cap?: number } = {}): Promise<Count> {
  const cap = p.cap ?? COUNT_CAP;
  const [row] = await db`
    SELECT count(*)::int AS n
    FROM (SELECT 1 FROM state.outbox WHERE status = 'pending' LIMIT ${cap + 1}) x`;
  return capped(v.parse(N, row).n, cap, null);
}

/** Rows in `data.alert_events`, up to `cap`; above it the table's estimated size. */
export async function alertRowsCapped(db: Db, p: { cap?: number } = {}): Promise<Count> {
  const cap = p.cap ?? COUNT_CAP;
  const [row] = await db`
    SELECT (SELECT count(*) FROM (SELECT 1 FROM data.alert_events LIMIT ${cap + 1}) x)::int AS n,
           (SELECT reltuples::float8 FROM pg_class WHERE oid = 'data.alert_events'::regclass) AS estimate`;
  const r = v.parse(v.object({ n: v.number(), estimate: v.nullable(v.number()) }), row);
  return capped(r.n, cap, r.estimate);
}
