import type { Config } from "../config";
import { requireInternalAuthToken, requireObjectStore, requireStateDatabase } from "../config";
import { connect, describeUrl } from "../db/connect";
import { createLogger } from "../log";
import { openObjectStore } from "../objectstore/index";
import { listenQueues } from "../queue/signal";
import { DispatcherClient } from "./client";
import { type LoopOptions, type LoopSignals, runLoop } from "./loop";
import type { WorkerStats } from "./stats";

/** `harness worker`: wires config, database, object store and dispatcher client to the loop. */

export interface WorkerFlags {
  concurrency: number;
  untilIdleMs: number | undefined;
  graceMs: number;
}

export async function runWorker(
  cfg: Config,
  flags: WorkerFlags,
  signals: LoopSignals,
): Promise<WorkerStats> {
  const stateUrl = requireStateDatabase(cfg);
  const internalToken = requireInternalAuthToken(cfg);
  const store = await openObjectStore(requireObjectStore(cfg), cfg.s3);
  const log = createLogger("worker", { pid: process.pid });
  const db = connect(stateUrl, { name: "worker", max: Math.min(flags.concurrency + 2, 40) });
  try {
    const queue = await listenQueues(db).catch((cause: unknown) => {
      throw new Error(`cannot reach the state database at ${describeUrl(stateUrl)}`, { cause });
    });
    const client = new DispatcherClient({ baseUrl: cfg.dispatcherUrl, internalToken, log });
    const opts: LoopOptions = {
      concurrency: flags.concurrency,
      visibilityTimeoutMs: cfg.visibilityTimeoutMs,
      maxReceives: cfg.maxReceives,
      pollMs: 1_000,
      untilIdleMs: flags.untilIdleMs,
      graceMs: flags.graceMs,
    };
    log.info("worker started", {
      concurrency: flags.concurrency,
      dispatcher: cfg.dispatcherUrl,
      state: describeUrl(stateUrl),
      store: store.root,
      lease_ms: cfg.leaseDurationMs,
    });
    const ctx = { db, store, client, leaseDurationMs: cfg.leaseDurationMs, log };
    try {
      return await runLoop(ctx, queue, opts, signals);
    } finally {
      await queue.close().catch(() => {});
    }
  } finally {
    await db.end({ timeout: 5 });
  }
}
