import type { Message } from "../queue/seam";
import { sleep } from "../sleep";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff";
import type { WorkerContext } from "./context";
import { IdleWatch } from "./idle";
import { WORKER_LOG } from "./logs";
import { WorkerStats } from "./stats";
import { handleWakeup } from "./task";

/**
 * The worker's poll loop: receive as many `task_wakeup` messages as there are
 * free slots, run each, and when the queue is empty wait for a publish (or
 * `pollMs`, for messages whose visibility timeout passed) — no busy loop.
 * Under `--until-idle` it ends once the whole pipeline is done (./idle.ts),
 * or when the worker's GiveUp gives up: in-flight tasks are then abandoned.
 */

export interface LoopOptions {
  concurrency: number;
  /** The consumer's visibility timeout: how long a received wakeup stays hidden at least. */
  visibilityTimeoutMs: number;
  /** Longest wait on an empty queue before looking again. */
  pollMs: number;
  /** `--until-idle`: end once the pipeline stayed done this long, or give up after `giveUpMs`. */
  untilIdle: { idleMs: number; giveUpMs: number } | undefined;
  /** On stop, how long in-flight tasks get to finish before they are abandoned. */
  graceMs: number;
}

export interface LoopSignals {
  /** Stop receiving; let in-flight tasks finish within the grace period. */
  stop: AbortSignal;
  /** Abandon in-flight tasks now (their wakeups reappear). */
  abandon: AbortSignal;
}

/**
 * With every slot busy, how long the loop waits after the first one frees
 * before it receives: the others ending meanwhile share that one receive.
 */
const REFILL_GATHER_MS = 3;

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
  // Given up: nothing in flight can get anywhere either.
  const abandon = AbortSignal.any([signals.abandon, graceOver.signal, ctx.giveUp.signal]);
  const halt = AbortSignal.any([signals.stop, ctx.giveUp.signal]);
  const halted = aborted(halt);
  const u = opts.untilIdle;
  const idle = u === undefined ? undefined : new IdleWatch(ctx, u.idleMs, u.giveUpMs);
  const start = (msg: Message<"task_wakeup">, hiddenUntil: number) => {
    const run = handleWakeup(ctx, { msg, hiddenUntil }, abandon).then((result) => {
      stats.record(result);
      idle?.busy();
      inflight.delete(run);
    });
    inflight.add(run);
  };
  while (!halt.aborted) {
    if (inflight.size >= opts.concurrency) {
      await Promise.race([...inflight, halted]);
      // The tasks of one merged complete end within a few ms: one receive refills their slots.
      await sleep(REFILL_GATHER_MS, halt);
      continue;
    }
    // Listen before looking, so a publish between the two is not missed.
    const woken = ctx.queue.wait(idle?.waitMs(opts.pollMs) ?? opts.pollMs, halt);
    // The messages stay hidden at least this long (less a margin for clock skew with the database).
    const hiddenUntil = Date.now() + opts.visibilityTimeoutMs - 250;
    const got = await receive(ctx, opts.concurrency - inflight.size);
    if ("failures" in got) {
      await sleep(backoffDelay(DEFAULT_BACKOFF, got.failures - 1), halt);
      continue;
    }
    for (const msg of got.messages) start(msg, hiddenUntil);
    if (got.messages.length > 0) {
      idle?.busy();
      continue;
    }
    if (inflight.size === 0 && idle !== undefined && (await idle.done(halt))) break;
    await Promise.race([woken, ...inflight]);
  }
  await drain(ctx, inflight, opts.graceMs, abandon, graceOver);
  // Done attempts' acks, before the queue is closed.
  await ctx.acks?.settled();
  return stats;
}

/** One receive; a failure is reported (and logged) as an outage of the queue. */
async function receive(
  ctx: WorkerContext,
  max: number,
): Promise<{ messages: Message<"task_wakeup">[] } | { failures: number }> {
  const l = { log: ctx.log, msg: WORKER_LOG.queueUnavailable, back: WORKER_LOG.queueBack };
  try {
    const messages = await ctx.queue.receive(max);
    ctx.giveUp.up(ctx.queueAt, l);
    return { messages };
  } catch (err) {
    return { failures: ctx.giveUp.down(ctx.queueAt, err, l).failures };
  }
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
