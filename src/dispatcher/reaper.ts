import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import { outboxPendingCount } from "../outbox/sql";
import type { QueueBackend } from "../queue/seam";
import { sleep } from "../sleep";
import type { Metrics } from "./metrics";
import { leaseReapExpired } from "./sql/reap";
import { taskSweep, taskSweepDue } from "./sql/sweep";

/**
 * The reaper (invariant 8), one round every quarter lease: `running` tasks
 * whose lease expired get one fresh `task_wakeup` per expiry, and `queued`
 * tasks left unclaimed for the sweep period since their last wakeup get one
 * per period (./sql/sweep.ts), both through the outbox — so a task is
 * retried even when its wakeup was acked without a claim or dead-lettered.
 */

const REAP_LIMIT = 500;

export const REAPER_LOG = {
  reaped: "woke tasks with expired leases",
  swept: "woke queued tasks left unclaimed for the sweep period",
  failed: "reaper round failed; retrying",
  uncounted: "could not count the wakeups waiting in the queue; the sweep goes by its period alone",
} as const;

/** How often to look: a quarter of the lease, between 50 ms and 5 s. */
export const reapIntervalMs = (leaseMs: number): number =>
  Math.min(5_000, Math.max(50, Math.floor(leaseMs / 4)));

/**
 * How long a queued task may go unclaimed since its last wakeup before the
 * sweep writes it another: VISIBILITY_TIMEOUT_MS × MAX_RECEIVES (150 s by
 * default). That is the longest an honest wakeup spends in receivers' hands:
 * each receive hides it for the visibility timeout, a worker that could not
 * claim (the dispatcher unreachable, a crash before its claim) lets it come
 * back, and the queue dead-letters it at the receive after the last. So
 * under normal flow a wakeup is claimed well within the period and the sweep
 * adds nothing; past it, the wakeup was taken without a claim, dead-lettered,
 * or still waits unreceived behind a backlog, which the sweep's guard
 * counts. Not the lease: a queued task holds none.
 */
export const sweepPeriodMs = (c: { visibilityTimeoutMs: number; maxReceives: number }): number =>
  c.visibilityTimeoutMs * c.maxReceives;

/**
 * The sweep's guard: how many task_wakeup messages wait in the queue to be
 * received (ready or delayed). pgqueue counts them for the dispatcher (it
 * may read the messages' queue, time and receive count, not their payloads:
 * src/db/grants.ts). On NATS the dispatcher's broker user may only publish
 * (src/queue/nats/permissions.ts): there the period alone decides.
 */
export function wakeupsWaiting(queue: QueueBackend): (() => Promise<number>) | undefined {
  if (queue.kind !== "pgqueue") return undefined;
  const admin = queue.admin();
  return async () => {
    const d = (await admin.depths()).find((q) => q.queue === "task_wakeup");
    return (d?.ready ?? 0) + (d?.delayed ?? 0);
  };
}

export interface ReaperOptions {
  leaseMs: number;
  sweep: {
    periodMs: number;
    /**
     * How many task_wakeup messages wait in the queue to be received (ready or
     * delayed); undefined when the dispatcher may not count them.
     */
    waiting: (() => Promise<number>) | undefined;
  };
  signal: AbortSignal;
  log: Logger;
  metrics: Metrics;
}

export async function runReaper(sql: Sql, p: ReaperOptions): Promise<void> {
  const every = reapIntervalMs(p.leaseMs);
  while (!p.signal.aborted) {
    try {
      const reaped = await leaseReapExpired(sql, { limit: REAP_LIMIT });
      if (reaped > 0) {
        p.metrics.reaped.inc({}, reaped);
        p.log.info(REAPER_LOG.reaped, { count: reaped });
      }
      const swept = await sweepRound(sql, p);
      if (swept > 0) {
        p.metrics.swept.inc({}, swept);
        p.log.info(REAPER_LOG.swept, { count: swept, period_ms: p.sweep.periodMs });
      }
      if (reaped >= REAP_LIMIT || swept >= REAP_LIMIT) continue;
    } catch (err) {
      p.log.error(REAPER_LOG.failed, { err });
    }
    await sleep(every, p.signal);
  }
}

/**
 * The wakeups are counted only when some task is due: the outbox's pending
 * ones first, then the queue's, so a row the drainer publishes in between is
 * counted twice rather than not at all (too many waiting only holds a sweep
 * back until the next round). A queue that cannot be counted (down, a grant
 * missing) leaves the period alone to decide: a duplicate wakeup is
 * harmless, a task never woken is not.
 */
async function sweepRound(sql: Sql, p: ReaperOptions): Promise<number> {
  const { periodMs, waiting } = p.sweep;
  if (!(await taskSweepDue(sql, { periodMs }))) return 0;
  let n: number | null = null;
  if (waiting !== undefined) {
    const pending = await outboxPendingCount(sql, { queue: "task_wakeup" });
    try {
      n = pending + (await waiting());
    } catch (err) {
      p.log.warn(REAPER_LOG.uncounted, { err });
    }
  }
  return taskSweep(sql, { limit: REAP_LIMIT, periodMs, waiting: n });
}
