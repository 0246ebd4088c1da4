import { BACKGROUND_ACK_LINGER_MS, Background } from "../background";
import type { Config } from "../config";
import { requireInternalAuthToken, requireObjectStore } from "../config";
import { GiveUp, queueDependency } from "../give-up";
import { createLogger } from "../log";
import { openObjectStore } from "../objectstore/index";
import { openQueue } from "../queue/open";
import { DispatcherClient } from "./client";
import type { ExecContext, WorkerContext } from "./context";
import { type ExecSettings, prepareExec } from "./exec/setup";
import { WORKER_LOG } from "./logs";
import { type LoopOptions, type LoopSignals, runLoop } from "./loop";
import type { WorkerStats } from "./stats";

/**
 * `harness worker`: wires config, the `task_wakeup` consumer, the object
 * store and the dispatcher client to the loop. The queue backend is the only
 * thing here that holds connections to the state database. Under
 * `--until-idle` a run that gives up (./loop.ts) ends in the error that says
 * why, for the command's one line.
 */

const WORKER_QUEUE_CONNECTIONS = 4;

export interface WorkerFlags {
  concurrency: number;
  /** `--until-idle`: how long the pipeline must stay done, and how long an outage is waited out. */
  untilIdle: { idleMs: number; giveUpMs: number } | undefined;
  graceMs: number;
  /** `--exec CMD`: a task program does each attempt's work. */
  exec?: ExecSettings | undefined;
}

export async function runWorker(
  cfg: Config,
  flags: WorkerFlags,
  signals: LoopSignals,
): Promise<WorkerStats> {
  const internalToken = requireInternalAuthToken(cfg);
  const log = createLogger("worker", { pid: process.pid });
  // Checked before anything is opened: a setting the machine cannot honour stops the worker at once.
  const exec: ExecContext | undefined =
    flags.exec === undefined
      ? undefined
      : {
          plan: prepareExec(flags.exec, process.env, log),
          maxBatchBytes: cfg.maxBatchBytes,
          maxBatches: cfg.maxBatchesPerAttempt,
        };
  const store = await openObjectStore(requireObjectStore(cfg), cfg.s3);
  // A few connections carry every slot's queue calls: receives and acks are
  // merged (src/queue/pg/consumer.ts) and the rest pipeline, so a larger pool
  // only costs the database a backend per connection.
  const backend = await openQueue(cfg, {
    name: "worker",
    connections: Math.min(flags.concurrency + 2, WORKER_QUEUE_CONNECTIONS),
    ackLingerMs: BACKGROUND_ACK_LINGER_MS,
  });
  try {
    const queue = await backend.consumer("task_wakeup", {
      visibilityTimeoutMs: cfg.visibilityTimeoutMs,
      maxReceives: cfg.maxReceives,
    });
    const giveUp = new GiveUp(flags.untilIdle?.giveUpMs);
    const client = new DispatcherClient({
      baseUrl: cfg.dispatcherUrl,
      internalToken,
      log,
      giveUp,
    });
    const opts: LoopOptions = {
      concurrency: flags.concurrency,
      visibilityTimeoutMs: cfg.visibilityTimeoutMs,
      pollMs: 1_000,
      untilIdle: flags.untilIdle,
      graceMs: flags.graceMs,
    };
    log.info(WORKER_LOG.started, {
      concurrency: flags.concurrency,
      dispatcher: cfg.dispatcherUrl,
      queue: backend.kind,
      store: store.root,
      lease_ms: cfg.leaseDurationMs,
      exec: exec?.plan.command,
    });
    const ctx: WorkerContext = {
      queue,
      queueAt: queueDependency(cfg, "task_wakeup"),
      store,
      client,
      leaseDurationMs: cfg.leaseDurationMs,
      log,
      giveUp,
      exec,
      acks: new Background(log),
    };
    const stats = await runLoop(ctx, opts, signals);
    log.info(WORKER_LOG.stopped, stats.summary());
    if (giveUp.reason !== undefined) throw giveUp.reason;
    return stats;
  } finally {
    await backend.close();
  }
}
