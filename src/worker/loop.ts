import type { Message } from "../queue/seam";
import { sleep } from "../sleep";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff";
import type { WorkerContext } from "./context";
import { WorkerStats } from "./stats";
import { handleWakeup } from "./task";

/**
 * The worker's poll loop: receive as many `task_wakeup` messages as there are
 * free slots, run each, and when the queue is empty wait for a publish (or
 * `pollMs`, for messages whose visibility timeout passed) — no busy loop.
 */

export interface LoopOptions {
  concurrency: number;
  /** The consumer's visibility timeout: how long a received wakeup stays hidden at least. */
  visibilityTimeoutMs: number;
  /** Longest wait on an empty queue before looking again. */
  pollMs: number;
  /** Exit once the queue stayed empty, with nothing in flight, this long. */
  untilIdleMs: number | undefined;
  /** On stop, how long in-flight tasks get to finish before they are abandoned. */
  graceMs: number;
}

export interface LoopSignals {
  /** Stop receiving; let in-flight tasks finish within the grace period. */
  stop: AbortSignal;
  /** Abandon in-flight tasks now (their wakeups reappear). */
  abandon: AbortSignal;
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export async function runLoop(
  ctx: WorkerContext,
  opts: LoopOptions,
  signals: LoopSignals,
): Promise<WorkerStats> {
  const stats = new WorkerStats();
  const inflight = new Set<Promise<void>>();
  const graceOver = new AbortController();
  const abandon = AbortSignal.any([signals.abandon, graceOver.signal]);
  const stopped = aborted(signals.stop);
  let lastBusy = Date.now();
  let failures = 0;
  const start = (msg: Message<"task_wakeup">, hiddenUntil: number) => {
    const run = handleWakeup(ctx, { msg, hiddenUntil }, abandon).then((result) => {
      stats.record(result);
      lastBusy = Date.now();
      inflight.delete(run);
    });
    inflight.add(run);
  };
  while (!signals.stop.aborted) {
    if (inflight.size >= opts.concurrency) {
      await Promise.race([...inflight, stopped]);
      continue;
    }
    // Listen before looking, so a publish between the two is not missed.
    const woken = ctx.queue.wait(waitMs(opts, lastBusy), signals.stop);
    // The messages stay hidden at least this long (less a margin for clock skew with the database).
    const hiddenUntil = Date.now() + opts.visibilityTimeoutMs - 250;
    const got = await ctx.queue.receive(opts.concurrency - inflight.size).catch((err) => {
      failures += 1;
      ctx.log.error("receiving wakeups failed", { err, failures });
      return undefined;
    });
    if (got === undefined) {
      await sleep(backoffDelay(DEFAULT_BACKOFF, failures - 1), signals.stop);
      continue;
    }
    failures = 0;
    for (const msg of got) start(msg, hiddenUntil);
    if (got.length > 0) {
      lastBusy = Date.now();
      continue;
    }
    if (idle(opts, inflight.size, lastBusy)) break;
    await Promise.race([woken, ...inflight]);
  }
  await drain(ctx, inflight, opts.graceMs, abandon, graceOver);
  return stats;
}

function waitMs(opts: LoopOptions, lastBusy: number): number {
  if (opts.untilIdleMs === undefined) return opts.pollMs;
  const untilIdle = lastBusy + opts.untilIdleMs - Date.now();
  return Math.max(10, Math.min(opts.pollMs, untilIdle));
}

function idle(opts: LoopOptions, inflight: number, lastBusy: number): boolean {
  return (
    opts.untilIdleMs !== undefined && inflight === 0 && Date.now() - lastBusy >= opts.untilIdleMs
  );
}

/** Lets in-flight tasks finish within the grace period, then abandons the rest. */
async function drain(
  ctx: WorkerContext,
  inflight: Set<Promise<void>>,
  graceMs: number,
  abandon: AbortSignal,
  graceOver: AbortController,
): Promise<void> {
  if (inflight.size === 0) return;
  ctx.log.info("stopping: waiting for in-flight tasks", {
    in_flight: inflight.size,
    grace_ms: graceMs,
  });
  const all = Promise.all([...inflight]);
  const finished = new AbortController();
  await Promise.race([
    all.then(() => finished.abort()),
    sleep(graceMs, AbortSignal.any([abandon, finished.signal])),
  ]);
  if (inflight.size > 0) {
    ctx.log.warn("grace period over: abandoning in-flight tasks", { in_flight: inflight.size });
    graceOver.abort();
    await all;
  }
}
