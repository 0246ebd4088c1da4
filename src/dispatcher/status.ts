import type { Db } from "../db/connect";
import type { QueueAdmin } from "../queue/seam";
import { alertEventsCount, sinkBatchesTotals } from "../sink/sql";
import { outboxPendingCount } from "./sql/outbox";
import { taskCountByStatus } from "./sql/tasks";

/**
 * What `harness status` reports, as data (`collectStatus`) and as text
 * (`formatStatus`), for the command, a later `status --watch` and `harness up`.
 */

export interface StatusReport {
  tasks: { queued: number; running: number; succeeded: number; failed: number };
  queues: Array<{ queue: string; ready: number; in_flight: number; delayed: number; dead: number }>;
  outbox: { pending: number };
  alerts: { rows: number; batches: number; inserted: number; skipped: number };
}

async function alertCounts(db: Db): Promise<StatusReport["alerts"]> {
  const [rows, totals] = await Promise.all([alertEventsCount(db), sinkBatchesTotals(db)]);
  return {
    rows,
    batches: totals.batches,
    inserted: totals.rowsInserted,
    skipped: totals.rowsSkipped,
  };
}

/** One snapshot of both databases and the queues (not one transaction: they may be different servers). */
export async function collectStatus(p: {
  state: Db;
  data: Db;
  queues: QueueAdmin;
}): Promise<StatusReport> {
  const [byStatus, queues, pending, alerts] = await Promise.all([
    taskCountByStatus(p.state),
    p.queues.depths(),
    outboxPendingCount(p.state),
    alertCounts(p.data),
  ]);
  return {
    tasks: {
      queued: byStatus.queued ?? 0,
      running: byStatus.running ?? 0,
      succeeded: byStatus.succeeded ?? 0,
      failed: byStatus.failed ?? 0,
    },
    queues: queues.map((q) => ({
      queue: q.queue,
      ready: q.ready,
      in_flight: q.inFlight,
      delayed: q.delayed,
      dead: q.dead,
    })),
    outbox: { pending },
    alerts,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

/** The human form: a few aligned lines. */
export function formatStatus(r: StatusReport): string {
  const t = r.tasks;
  const lines = [
    `tasks    queued ${t.queued}  running ${t.running}  succeeded ${t.succeeded}  failed ${t.failed}`,
    `outbox   pending ${r.outbox.pending}`,
    `alerts   rows ${r.alerts.rows}  (batches ${r.alerts.batches}, inserted ${r.alerts.inserted}, skipped ${r.alerts.skipped})`,
    "queue                ready  in-flight  delayed  dead",
    ...r.queues.map(
      (q) =>
        `${q.queue.padEnd(18)} ${pad(q.ready, 7)} ${pad(q.in_flight, 10)} ${pad(q.delayed, 8)} ${pad(q.dead, 5)}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
