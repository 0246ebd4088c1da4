import { Background } from "../background";
import type { Message } from "../queue/seam";
import { ingestMessage, type SinkDeps, type Writing } from "./ingest";
import { SINK_LOG } from "./logs";
import type { SinkMetrics } from "./metrics";
import { Slots } from "./slots";
import { BatchWriter } from "./writer";

/**
 * The sink's receive loop: holds up to HELD_PER_WRITE × `concurrency` buffer
 * messages (one receive for all free places), writes at most `concurrency`
 * groups of them at once (./writer.ts) and fetches and validates the others
 * meanwhile, so that CPU work overlaps the database's even at
 * `--concurrency 1`, and small batches in hand go in few statements (with
 * `concurrency + 1` in hand, e2e-10 wrote groups of 5 batches; with four times
 * `concurrency`, 1.40 → 1.20 statements per task). When the queue is empty it waits
 * for a publish (or a short timeout, for messages whose visibility timeout
 * passes) instead of spinning. On `stop` it takes no new message and finishes
 * the ones in hand; so it does when its GiveUp gives up (`--until-idle`).
 */

export interface SinkLoopOptions {
  concurrency: number;
  /** Exit once `buffer_queue` has held nothing at all (ready, hidden or delayed) for `idleMs`. */
  untilIdle: boolean;
  idleMs: number;
  stop: AbortSignal;
}

/**
 * Batch bytes in hand at once (claimed sizes, from fetch to write; a larger
 * batch runs alone). A batch in hand takes about its size in packed rows,
 * plus the garbage of reading it until the collector runs: with this, five
 * concurrent 60 MB batches stay under 512 MB of RSS (bench/sink-memory.ts),
 * while batches of ordinary size never wait for it.
 */
const BATCH_BYTES_IN_HAND = 64 * 1024 * 1024;
/** Messages in hand per place to write: enough for the writer's groups. */
const HELD_PER_WRITE = 4;

function pollInterval(visibilityTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(visibilityTimeoutMs / 4)));
}

/** A call on the STATE database (the queue), its failure or success told to the sink's GiveUp. */
async function onState<T>(deps: SinkDeps, call: () => Promise<T>): Promise<T | undefined> {
  const o = deps.outages;
  const l = { log: deps.log, msg: SINK_LOG.stateUnavailable, back: SINK_LOG.stateBack };
  try {
    const result = await call();
    o?.giveUp.up(o.state, l);
    return result;
  } catch (err) {
    if (o === undefined) deps.log.warn(SINK_LOG.stateUnavailable, { err });
    else o.giveUp.down(o.state, err, l);
    return undefined;
  }
}

async function queueEmpty(deps: SinkDeps): Promise<boolean> {
  const d = await onState(deps, () => deps.queue.depth());
  return d !== undefined && d.ready + d.inFlight + d.delayed === 0;
}

interface LoopState {
  inFlight: Set<Promise<void>>;
  idleSince: number | undefined;
}

function start(deps: Writing, s: LoopState, m: Message<"buffer_queue">): void {
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

export async function runSinkLoop(given: SinkDeps, opts: SinkLoopOptions): Promise<SinkMetrics> {
  const deps = {
    ...given,
    writer: given.writer ?? new BatchWriter(given.data, new Slots(opts.concurrency), given.log),
    memory: given.memory ?? new Slots(BATCH_BYTES_IN_HAND),
    acks: given.acks ?? new Background(given.log),
  };
  const giveUp = deps.outages?.giveUp.signal;
  const o = {
    ...opts,
    stop: giveUp === undefined ? opts.stop : AbortSignal.any([opts.stop, giveUp]),
  };
  const held = o.concurrency * HELD_PER_WRITE;
  const pollMs = pollInterval(deps.visibilityTimeoutMs);
  const s: LoopState = { inFlight: new Set(), idleSince: undefined };
  try {
    while (!o.stop.aborted) {
      if (s.inFlight.size >= held) {
        await Promise.race(s.inFlight);
        continue;
      }
      const got = await onState(deps, () => deps.queue.receive(held - s.inFlight.size));
      for (const m of got ?? []) start(deps, s, m);
      if (got !== undefined && got.length > 0) {
        s.idleSince = undefined;
        continue;
      }
      if (got !== undefined && (await idleLongEnough(deps, o, s))) break;
      const waits: Promise<unknown>[] = [deps.queue.wait(pollMs, o.stop)];
      if (s.inFlight.size > 0) waits.push(Promise.race(s.inFlight));
      // A committed batch whose ack is still under way keeps the queue from looking empty.
      if (deps.acks.size > 0) waits.push(deps.acks.settled());
      await Promise.race(waits);
    }
  } finally {
    await Promise.allSettled(s.inFlight);
    // Committed batches' acks, before the queue is closed.
    await deps.acks.settled();
  }
  return deps.metrics;
}
