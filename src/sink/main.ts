import { BACKGROUND_ACK_LINGER_MS } from "../background";
import { type Config, requireDataDatabase, requireObjectStore } from "../config";
import { connect, describeUrl } from "../db/connect";
import { GiveUp, queueDependency } from "../give-up";
import { createLogger } from "../log";
import { openObjectStore } from "../objectstore/index";
import { openQueue } from "../queue/open";
import type { SinkOutages } from "./ingest";
import { SINK_LOG } from "./logs";
import { runSinkLoop } from "./loop";
import { newSinkMetrics, type SinkMetrics } from "./metrics";

/**
 * `harness sink`: wires config, the `buffer_queue` consumer (the sink's only
 * way to the STATE database), the DATA pool and the object store to the loop.
 * Under `--until-idle` a run that gives up ends in the error that says why,
 * for the command's one line.
 */

export interface SinkFlags {
  concurrency: number;
  /** Exit once `buffer_queue` has held nothing for `idleMs`. */
  untilIdle: boolean;
  idleMs: number;
  /** With `untilIdle`: give up once a database stayed unavailable this long. */
  giveUpMs: number;
}

function outagesOf(cfg: Config, dataUrl: string, flags: SinkFlags): SinkOutages {
  return {
    giveUp: new GiveUp(flags.untilIdle ? flags.giveUpMs : undefined),
    state: queueDependency(cfg, "buffer_queue"),
    data: { name: "the data database", where: describeUrl(dataUrl) },
  };
}

export interface SinkRun {
  metrics: SinkMetrics;
  elapsedMs: number;
}

export async function runSink(
  cfg: Config,
  flags: SinkFlags,
  signals: { stop: AbortSignal },
): Promise<SinkRun> {
  const dataUrl = requireDataDatabase(cfg);
  const store = await openObjectStore(requireObjectStore(cfg), cfg.s3);
  const log = createLogger("sink");
  // "sink-state" labels the STATE connections: verify looks for them (src/verify/exclusive.ts).
  const backend = await openQueue(cfg, {
    name: "sink-state",
    connections: flags.concurrency + 2,
    ackLingerMs: BACKGROUND_ACK_LINGER_MS,
  });
  // One connection per write place, and one more for the look-ups of batches
  // committed before (src/sink/ingest.ts), which then never wait behind a write.
  const data = connect(dataUrl, { name: "sink-data", max: flags.concurrency + 1 });
  const metrics = newSinkMetrics();
  const outages = outagesOf(cfg, dataUrl, flags);
  const started = performance.now();
  try {
    const queue = await backend.consumer("buffer_queue", {
      visibilityTimeoutMs: cfg.visibilityTimeoutMs,
      maxReceives: cfg.maxReceives,
    });
    log.info(SINK_LOG.started, {
      concurrency: flags.concurrency,
      queue: backend.kind,
      data: describeUrl(dataUrl),
      store: store.root,
    });
    const deps = {
      queue,
      data,
      store,
      maxBatchBytes: cfg.maxBatchBytes,
      visibilityTimeoutMs: cfg.visibilityTimeoutMs,
      log,
      metrics,
      outages,
    };
    await runSinkLoop(deps, { ...flags, stop: signals.stop });
  } finally {
    await Promise.allSettled([backend.close(), data.end({ timeout: 5 })]);
  }
  const elapsedMs = performance.now() - started;
  log.info(SINK_LOG.stopped, {
    batches: metrics.batches,
    rows_inserted: metrics.rowsInserted,
    rows_skipped: metrics.rowsSkipped,
    dead_letters: metrics.deadLetters,
    retries: metrics.retries,
    ms: Math.round(elapsedMs),
  });
  if (outages.giveUp.reason !== undefined) throw outages.giveUp.reason;
  return { metrics, elapsedMs };
}
