import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import type { Metrics } from "./metrics";
import { leaseReapExpired } from "./sql/reap";

/**
 * The lease reaper (invariant 8): `running` tasks whose lease expired get
 * one fresh `task_wakeup` per expiry through the outbox, so a task is
 * retried even when its original wakeup was acked.
 */

const REAP_LIMIT = 500;

/** How often to look: a quarter of the lease, between 50 ms and 5 s. */
export const reapIntervalMs = (leaseMs: number): number =>
  Math.min(5_000, Math.max(50, Math.floor(leaseMs / 4)));

export async function runReaper(
  sql: Sql,
  p: { leaseMs: number; signal: AbortSignal; log: Logger; metrics: Metrics },
): Promise<void> {
  const every = reapIntervalMs(p.leaseMs);
  while (!p.signal.aborted) {
    try {
      const n = await leaseReapExpired(sql, { limit: REAP_LIMIT });
      if (n > 0) {
        p.metrics.reaped.inc({}, n);
        p.log.info("woke tasks with expired leases", { count: n });
      }
      if (n >= REAP_LIMIT) continue;
    } catch (err) {
      p.log.error("lease reaper round failed; retrying", { err });
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, every);
      function done() {
        clearTimeout(timer);
        p.signal.removeEventListener("abort", done);
        resolve();
      }
      p.signal.addEventListener("abort", done, { once: true });
    });
  }
}
