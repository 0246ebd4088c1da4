import type { Server } from "bun";
import {
  type Config,
  requireInternalAuthToken,
  requireObjectStore,
  requireStateDatabase,
} from "../config";
import { connect, type Sql } from "../db/connect";
import { createLogger, type Logger } from "../log";
import { openQueue } from "../queue/open";
import { createVerifier } from "./capability";
import { claimBatcher } from "./claims";
import { completeBatcher } from "./completes";
import { createWakeup, runDrainer } from "./drainer";
import type { Deps } from "./handlers";
import { bearerCheck, concurrencyCap, HARD_BODY_BYTES, problem } from "./http";
import { loadKeyRing } from "./keys";
import { DISPATCHER_LOG } from "./logs";
import { createMetrics } from "./metrics";
import { publishBatcher } from "./publishes";
import { runReaper, sweepPeriodMs, wakeupsWaiting } from "./reaper";
import { renewBatcher } from "./renewals";
import { notFound, routeTable } from "./routes";

/**
 * `harness dispatcher`: the HTTP API, the outbox drainer and the lease
 * reaper in one process, on one postgres.js pool.
 */

const POOL_SIZE = 16;
/** Capability tokens outlive the longest task (work_ms ≤ 1 h) by the lease; fencing bounds them anyway. */
const DEFAULT_TTL_MS = 3_600_000;

export interface RunningDispatcher {
  port: number;
  /** Stops taking requests, ends the loops, closes the pool. */
  stop(): Promise<void>;
}

function serve(
  port: number,
  routes: Record<string, (req: Request) => Response | Promise<Response>>,
  fallback: (req: Request) => Response | Promise<Response>,
  log: Logger,
): Server<undefined> {
  return Bun.serve({
    port,
    maxRequestBodySize: HARD_BODY_BYTES,
    routes,
    fetch: fallback,
    error: (err) => {
      log.error("unhandled request error", { err });
      return problem(500, "internal", "internal error");
    },
  });
}

/** The one pool of the API, the drainer and the reaper; its merged statements are planned once. */
const statePool = (cfg: Config): Sql =>
  connect(requireStateDatabase(cfg), { name: "dispatcher", max: POOL_SIZE, genericPlans: true });

/** Concurrent task calls of each kind merged into shared statements (./merge.ts). */
function mergedCalls(sql: Sql, cfg: Config) {
  return {
    claimer: claimBatcher(sql, { leaseMs: cfg.leaseDurationMs, maxAttempts: cfg.maxAttempts }),
    completer: completeBatcher(sql, cfg.maxBatchesPerAttempt),
    publisher: publishBatcher(sql, cfg.maxBatchesPerAttempt),
    renewer: renewBatcher(sql, cfg.leaseDurationMs),
  };
}

export async function startDispatcher(cfg: Config, port = cfg.port): Promise<RunningDispatcher> {
  const internalToken = requireInternalAuthToken(cfg);
  const objectStoreUrl = requireObjectStore(cfg);
  const log = createLogger("dispatcher");
  const sql = statePool(cfg);
  // The drainer publishes through the queue seam: pgqueue inside its own transaction.
  const queue = await openQueue(cfg, { name: "dispatcher-queue", connections: 2 });
  const ring = await loadKeyRing(cfg, sql);
  const metrics = createMetrics();
  const drainerWake = createWakeup();
  const capabilityTtlMs = cfg.capability.ttlMs ?? DEFAULT_TTL_MS + cfg.leaseDurationMs;
  const d: Deps = {
    sql,
    ring,
    verifier: createVerifier(ring, { maxLifetimeMs: capabilityTtlMs }),
    metrics,
    log,
    lease: { leaseMs: cfg.leaseDurationMs, maxAttempts: cfg.maxAttempts },
    batch: {
      objectStoreUrl,
      maxBatchBytes: cfg.maxBatchBytes,
      maxBatchesPerAttempt: cfg.maxBatchesPerAttempt,
    },
    capabilityTtlMs,
    internalAuth: bearerCheck(internalToken),
    wakeDrainer: drainerWake.wake,
    ...mergedCalls(sql, cfg),
  };
  const abort = new AbortController();
  const loops = [
    runDrainer(sql, {
      signal: abort.signal,
      wake: drainerWake,
      log,
      metrics,
      publisherFor: (tx) => queue.publisher(tx),
    }),
    runReaper(sql, {
      leaseMs: cfg.leaseDurationMs,
      sweep: { periodMs: sweepPeriodMs(cfg), waiting: wakeupsWaiting(queue) },
      signal: abort.signal,
      log,
      metrics,
    }),
  ];
  // One cap over every route: past it, 503 at once (src/dispatcher/http.ts).
  const cap = concurrencyCap(cfg.maxConcurrentRequests);
  const routes = Object.fromEntries(Object.entries(routeTable(d)).map(([p, h]) => [p, cap(h)]));
  let server: Server<undefined>;
  try {
    server = serve(port, routes, cap(notFound), log);
  } catch (cause) {
    abort.abort();
    await Promise.allSettled(loops);
    await Promise.allSettled([sql.end({ timeout: 5 }), queue.close()]);
    throw new Error(`listening on port ${port}`, { cause });
  }
  const bound = server.port ?? port;
  log.info(DISPATCHER_LOG.listening, { port: bound, keys: ring.source, kid: ring.signing.kid });
  return {
    port: bound,
    async stop() {
      await server.stop();
      abort.abort();
      await Promise.allSettled(loops);
      await Promise.allSettled([sql.end({ timeout: 5 }), queue.close()]);
      log.info("dispatcher stopped");
    },
  };
}
