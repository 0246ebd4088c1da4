import type { Message } from "../queue/seam";
import { ingestMessage, type SinkDeps } from "./ingest";
import type { SinkMetrics } from "./metrics";
import { Slots } from "./slots";

/**
 * The sink's receive loop: holds up to `concurrency + 1` buffer messages (one
 * receive for all free places), writes at most `concurrency` of them at once
 * and fetches and validates the extra one meanwhile, so that CPU work overlaps
 * the database's even at `--concurrency 1`. When the queue is empty it waits
 * for a publish (or a short timeout, for messages whose visibility timeout
 * passes) instead of spinning. On `stop` it takes no new message and finishes
 * the ones in hand.
 */

export interface SinkLoopOptions {
  concurrency: number;
  /** Exit once `buffer_queue` has held nothing at all (ready, hidden or delayed) for `idleMs`. */
  untilIdle: boolean;
  idleMs: number;
  stop: AbortSignal;
}

function pollInterval(visibilityTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(visibilityTimeoutMs / 4)));
}

async function queueEmpty(deps: SinkDeps): Promise<boolean> {
  const d = await deps.queue.depth();
  return d.ready + d.inFlight + d.delayed === 0;
}

interface LoopState {
  inFlight: Set<Promise<void>>;
  idleSince: number | undefined;
}

function start(deps: SinkDeps, s: LoopState, m: Message<"buffer_queue">): void {
  const work = ingestMessage(deps, m).then(
    () => {},
    (err: unknown) => deps.log.error("batch handling crashed", { message_id: m.id, err }),
  );
  s.inFlight.add(work);
  void work.finally(() => s.inFlight.delete(work));
}

/** True when the loop should end because it ran until idle and the queue stayed empty. */
async function idleLongEnough(deps: SinkDeps, o: SinkLoopOptions, s: LoopState) {
  if (!o.untilIdle || s.inFlight.size > 0) return false;
  if (!(await queueEmpty(deps))) {
    s.idleSince = undefined;
    return false;
  }
  s.idleSince ??= performance.now();
  return performance.now() - s.idleSince >= o.idleMs;
}

async function receiveSome(deps: SinkDeps, max: number) {
  try {
    return await deps.queue.receive(max);
  } catch (err) {
    deps.log.warn("receive failed; trying again", { err });
    return undefined;
  }
}

export async function runSinkLoop(given: SinkDeps, o: SinkLoopOptions): Promise<SinkMetrics> {
  const deps = { ...given, writes: given.writes ?? new Slots(o.concurrency) };
  const held = o.concurrency + 1;
  const pollMs = pollInterval(deps.visibilityTimeoutMs);
  const s: LoopState = { inFlight: new Set(), idleSince: undefined };
  try {
    while (!o.stop.aborted) {
      if (s.inFlight.size >= held) {
        await Promise.race(s.inFlight);
        continue;
      }
      const got = await receiveSome(deps, held - s.inFlight.size);
      for (const m of got ?? []) start(deps, s, m);
      if (got !== undefined && got.length > 0) {
        s.idleSince = undefined;
        continue;
      }
      if (got !== undefined && (await idleLongEnough(deps, o, s).catch(() => false))) break;
      const waits: Promise<unknown>[] = [deps.queue.wait(pollMs, o.stop)];
      if (s.inFlight.size > 0) waits.push(Promise.race(s.inFlight));
      await Promise.race(waits);
    }
  } finally {
    await Promise.allSettled(s.inFlight);
  }
  return deps.metrics;
}
