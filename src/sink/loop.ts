import type { Sql } from "../db/connect";
import { depths, type Message, receive } from "../queue";
import { listenQueues, type QueueSignal } from "../queue/signal";
import { ingestMessage, type SinkDeps } from "./ingest";
import type { SinkMetrics } from "./metrics";
import { Slots } from "./slots";

/**
 * The sink's receive loop: holds up to `concurrency + 1` buffer messages (one
 * receive for all free places), writes at most `concurrency` of them at once
 * and fetches and validates the extra one meanwhile, so that CPU work overlaps
 * the database's even at `--concurrency 1`. When the queue is empty it waits
 * on LISTEN/NOTIFY (or a short timeout, for messages whose visibility timeout
 * passes) instead of spinning. On `stop` it takes no new message and finishes
 * the ones in hand.
 */

export interface SinkLoopOptions {
  concurrency: number;
  maxReceives: number;
  /** Exit once `buffer_queue` has held nothing at all (ready, hidden or delayed) for `idleMs`. */
  untilIdle: boolean;
  idleMs: number;
  stop: AbortSignal;
  /** Called once the loop listens for publishes, before the first receive. */
  onReady?: () => void;
}

export interface SinkLoopDeps extends SinkDeps {
  /** The STATE pool itself, for LISTEN. */
  stateSql: Sql;
}

const QUEUE = "buffer_queue";

function pollInterval(visibilityTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(visibilityTimeoutMs / 4)));
}

async function queueEmpty(deps: SinkLoopDeps): Promise<boolean> {
  const d = (await depths(deps.state)).find((q) => q.queue === QUEUE);
  return d === undefined || d.ready + d.inFlight + d.delayed === 0;
}

interface LoopState {
  inFlight: Set<Promise<void>>;
  idleSince: number | undefined;
}

function start(deps: SinkLoopDeps, s: LoopState, m: Message<"buffer_queue">): void {
  const work = ingestMessage(deps, m).then(
    () => {},
    (err: unknown) => deps.log.error("batch handling crashed", { message_id: m.id, err }),
  );
  s.inFlight.add(work);
  void work.finally(() => s.inFlight.delete(work));
}

/** True when the loop should end because it ran until idle and the queue stayed empty. */
async function idleLongEnough(deps: SinkLoopDeps, o: SinkLoopOptions, s: LoopState) {
  if (!o.untilIdle || s.inFlight.size > 0) return false;
  if (!(await queueEmpty(deps))) {
    s.idleSince = undefined;
    return false;
  }
  s.idleSince ??= performance.now();
  return performance.now() - s.idleSince >= o.idleMs;
}

async function receiveSome(deps: SinkLoopDeps, o: SinkLoopOptions, max: number) {
  try {
    return await receive(deps.state, QUEUE, {
      max,
      visibilityTimeoutMs: deps.visibilityTimeoutMs,
      maxReceives: o.maxReceives,
    });
  } catch (err) {
    deps.log.warn("receive failed; trying again", { err });
    return undefined;
  }
}

export async function runSinkLoop(given: SinkLoopDeps, o: SinkLoopOptions): Promise<SinkMetrics> {
  const deps = { ...given, writes: given.writes ?? new Slots(o.concurrency) };
  const held = o.concurrency + 1;
  const pollMs = pollInterval(deps.visibilityTimeoutMs);
  const signal: QueueSignal = await listenQueues(deps.stateSql);
  o.onReady?.();
  const s: LoopState = { inFlight: new Set(), idleSince: undefined };
  try {
    while (!o.stop.aborted) {
      if (s.inFlight.size >= held) {
        await Promise.race(s.inFlight);
        continue;
      }
      const got = await receiveSome(deps, o, held - s.inFlight.size);
      for (const m of got ?? []) start(deps, s, m);
      if (got !== undefined && got.length > 0) {
        s.idleSince = undefined;
        continue;
      }
      if (got !== undefined && (await idleLongEnough(deps, o, s).catch(() => false))) break;
      const waits: Promise<unknown>[] = [signal.wait(QUEUE, pollMs, o.stop)];
      if (s.inFlight.size > 0) waits.push(Promise.race(s.inFlight));
      await Promise.race(waits);
    }
  } finally {
    await Promise.allSettled(s.inFlight);
    await signal.close().catch(() => {});
  }
  return deps.metrics;
}
