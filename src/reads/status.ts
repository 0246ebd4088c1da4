import * as v from "valibot";
import type { Db } from "../db/connect";
import type { QueueAdmin, QueueDepth } from "../queue/seam";

/**
 * What `harness status` reports (and `harness up` sums up): read-only
 * queries of both databases, as data (`collectStatus`) and as text
 * (`formatStatus`). Nothing here writes.
 */

export interface StatusReport {
  tasks: { queued: number; running: number; succeeded: number; failed: number };
  queues: Array<{ queue: string; ready: number; in_flight: number; delayed: number; dead: number }>;
  /** Rows waiting to be published, and rows that never will be (`rejected`, with their reason in `state.outbox.error`). */
  outbox: { pending: number; rejected: number };
  alerts: { rows: number; batches: number; inserted: number; skipped: number };
  /** The most recently failed tasks, newest first, with why. */
  failures: Array<{ task_id: string; org_id: string; attempt: number; last_error: string | null }>;
}

/** How many failed tasks `status` lists. */
export const STATUS_FAILURES = 5;

const Counts = v.object({
  queued: v.number(),
  running: v.number(),
  succeeded: v.number(),
  failed: v.number(),
});

/** Task counts by status (every status present, zero when none). */
export async function taskCountByStatus(db: Db): Promise<StatusReport["tasks"]> {
  const [row] = await db`
    SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued,
           count(*) FILTER (WHERE status = 'running')::int AS running,
           count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
           count(*) FILTER (WHERE status = 'failed')::int AS failed
    FROM state.tasks`;
  return v.parse(Counts, row);
}

const OutboxCounts = v.object({ pending: v.number(), rejected: v.number() });

/** Outbox rows pending and rejected; each count served by its partial index (`outbox_pending_idx`, `outbox_rejected_idx`). */
export async function outboxCountByStatus(db: Db): Promise<StatusReport["outbox"]> {
  const [row] = await db`
    SELECT (SELECT count(*) FROM state.outbox WHERE status = 'pending')::int AS pending,
           (SELECT count(*) FROM state.outbox WHERE status NOT IN ('pending', 'sent'))::int AS rejected`;
  return v.parse(OutboxCounts, row);
}

const Failure = v.object({
  task_id: v.string(),
  org_id: v.string(),
  attempt: v.number(),
  last_error: v.nullable(v.string()),
});

/** The last `limit` failed tasks, newest first. */
export async function taskRecentFailures(
  db: Db,
  p: { limit: number },
): Promise<StatusReport["failures"]> {
  const rows = await db`
    SELECT id::text AS task_id, org_id, attempt, last_error FROM state.tasks
    WHERE status = 'failed'
    ORDER BY finished_at DESC NULLS LAST, id
    LIMIT ${p.limit}`;
  return v.parse(v.array(Failure), [...rows]);
}

const Totals = v.object({
  rows: v.number(),
  batches: v.number(),
  inserted: v.number(),
  skipped: v.number(),
});

/** Rows in `data.alert_events`, and what every sink has committed (`data.sink_batches`). */
export async function alertTotals(db: Db): Promise<StatusReport["alerts"]> {
  const [row] = await db`
    SELECT (SELECT count(*) FROM data.alert_events)::float8 AS rows,
           count(*)::int AS batches,
           coalesce(sum(rows_inserted), 0)::bigint::float8 AS inserted,
           coalesce(sum(rows_skipped), 0)::bigint::float8 AS skipped
    FROM data.sink_batches`;
  return v.parse(Totals, row);
}

/** A queue's depths as `status --json` and the dashboard show them (snake_case). */
export function depthView(q: QueueDepth) {
  return {
    queue: q.queue,
    ready: q.ready,
    in_flight: q.inFlight,
    delayed: q.delayed,
    dead: q.dead,
  };
}

/** One snapshot of both databases (not one transaction: they may be different servers). */
export async function collectStatus(p: {
  state: Db;
  data: Db;
  queues: QueueAdmin;
}): Promise<StatusReport> {
  const [tasks, queues, outbox, alerts, failures] = await Promise.all([
    taskCountByStatus(p.state),
    p.queues.depths(),
    outboxCountByStatus(p.state),
    alertTotals(p.data),
    taskRecentFailures(p.state, { limit: STATUS_FAILURES }),
  ]);
  return {
    tasks,
    queues: queues.map(depthView),
    outbox,
    alerts,
    failures,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const oneLine = (s: string, max: number) => {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** The human form: a few aligned lines, then the recent failures if any. */
export function formatStatus(r: StatusReport): string {
  const t = r.tasks;
  const lines = [
    `tasks    queued ${t.queued}  running ${t.running}  succeeded ${t.succeeded}  failed ${t.failed}`,
    `outbox   pending ${r.outbox.pending}  rejected ${r.outbox.rejected}`,
    `alerts   rows ${r.alerts.rows}  (batches ${r.alerts.batches}, inserted ${r.alerts.inserted}, skipped ${r.alerts.skipped})`,
    "queue                ready  in-flight  delayed  dead",
    ...r.queues.map(
      (q) =>
        `${q.queue.padEnd(18)} ${pad(q.ready, 7)} ${pad(q.in_flight, 10)} ${pad(q.delayed, 8)} ${pad(q.dead, 5)}`,
    ),
  ];
  if (r.failures.length > 0) {
    lines.push(`recent failures (last ${r.failures.length} of ${t.failed})`);
    for (const f of r.failures) {
      const why = oneLine(f.last_error ?? "(no reason recorded)", 160);
      lines.push(`  ${f.task_id} ${f.org_id} attempt ${f.attempt}: ${why}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
