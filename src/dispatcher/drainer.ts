import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import { OUTBOX_CHANNEL } from "../outbox/sql";
import { sleep } from "../sleep";
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
 * Rounds start at most this often: task calls wake the drainer one by one,
 * and a round costs a transaction of four statements however few rows it
 * takes, so rows written meanwhile go together. It delays a row this much at most.
 */
const MIN_ROUND_INTERVAL_MS = 10;

/** How this dispatcher's task calls wake its drainer: a plain call, no Event allocated per call. */
export interface Wakeup {
  wake(): void;
  /** The drainer's listener, until the returned function removes it. */
  listen(listener: () => void): () => void;
}

export function createWakeup(): Wakeup {
  let current: (() => void) | undefined;
  return {
    wake: () => current?.(),
    listen(listener) {
      current = listener;
      return () => {
        if (current === listener) current = undefined;
      };
    },
  };
}

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
    wake: Wakeup;
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
  const unlisten = p.wake.listen(poke);
  const round = {
    limit: DRAIN_BATCH,
    log: p.log,
    metrics: p.metrics,
    publisherFor: p.publisherFor,
  };
  try {
    let lastRound = Number.NEGATIVE_INFINITY;
    while (!p.signal.aborted) {
      const early = lastRound + MIN_ROUND_INTERVAL_MS - performance.now();
      if (early > 0) await sleep(early, p.signal);
      lastRound = performance.now();
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
    unlisten();
    await sub.unlisten().catch(() => {});
  }
}
