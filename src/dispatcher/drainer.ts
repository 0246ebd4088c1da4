import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import { OUTBOX_CHANNEL } from "../outbox/sql";
import { DRAIN_BATCH, outboxDrainOnce, type PublisherFor } from "./drain";
import type { Metrics } from "./metrics";

/**
 * The outbox drainer's loop: one round (./drain.ts) after another while rows
 * keep coming, then a wait. It wakes on NOTIFY from outbox inserts, and
 * polls as a backstop.
 */

const POLL_MS = 1_000;
const BACKOFF_MS = 500;

/**
 * Runs until `signal` aborts; resolves once the current round has ended.
 * Wakes on a "wake" event from this dispatcher's own task calls, on a NOTIFY
 * from task creation elsewhere, or after a short poll (rows another
 * dispatcher committed and left, e.g. when it died).
 */
export async function runDrainer(
  sql: Sql,
  p: {
    signal: AbortSignal;
    wake: EventTarget;
    log: Logger;
    metrics: Metrics;
    publisherFor: PublisherFor;
  },
): Promise<void> {
  let wake: (() => void) | undefined;
  let notified = false;
  const poke = () => {
    notified = true;
    wake?.();
  };
  const sub = await sql.listen(OUTBOX_CHANNEL, poke);
  p.signal.addEventListener("abort", poke, { once: true });
  p.wake.addEventListener("wake", poke);
  const round = {
    limit: DRAIN_BATCH,
    log: p.log,
    metrics: p.metrics,
    publisherFor: p.publisherFor,
  };
  try {
    while (!p.signal.aborted) {
      notified = false;
      let n = 0;
      let failed = false;
      try {
        const r = await outboxDrainOnce(sql, round);
        n = r.published + r.rejected;
      } catch (err) {
        failed = true;
        p.log.error("outbox drain failed; retrying", { err });
      }
      if (n >= DRAIN_BATCH || (notified && !failed) || p.signal.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, failed ? BACKOFF_MS : POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    p.wake.removeEventListener("wake", poke);
    await sub.unlisten().catch(() => {});
  }
}
