import type { Server } from "bun";
import {
  type Config,
  requireInternalAuthToken,
  requireObjectStore,
  requireStateDatabase,
} from "../config";
import { connect, type Sql } from "../db/connect";
import { isTransientDbError } from "../db/errors";
import { createLogger, type Logger } from "../log";
import { createVerifier } from "./capability";
import { runDrainer } from "./drainer";
import {
  type Deps,
  handleBufferPublish,
  handleClaim,
  handleComplete,
  handleHeartbeat,
} from "./handlers";
import { bearerCheck, HARD_BODY_BYTES, type Handler, json, only, problem } from "./http";
import { loadKeyRing } from "./keys";
import { createMetrics, type Metrics } from "./metrics";
import { runReaper } from "./reaper";
import { outboxPendingCount } from "./sql/outbox";

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

function timed(route: string, m: Metrics, log: Logger, handler: Handler): Handler {
  return async (req) => {
    const started = performance.now();
    let res: Response;
    try {
      res = await handler(req);
    } catch (err) {
      const transient = isTransientDbError(err);
      log.error("request failed", { route, err });
      res = transient
        ? problem(503, "unavailable", "the state database is unreachable; retry")
        : problem(500, "internal", "internal error");
    }
    m.latency.observe({ route, status: String(res.status) }, (performance.now() - started) / 1000);
    return res;
  };
}

function routes(d: Deps) {
  const t = (route: string, h: Handler) => timed(route, d.metrics, d.log, h);
  const post = (route: string, h: (d: Deps, req: Request) => Promise<Response>) =>
    t(
      route,
      only("POST", (req) => h(d, req)),
    );
  return {
    "/internal/task-claim": post("/internal/task-claim", handleClaim),
    "/v1/task/heartbeat": post("/v1/task/heartbeat", handleHeartbeat),
    "/v1/task/buffer-publish": post("/v1/task/buffer-publish", handleBufferPublish),
    "/v1/task/complete": post("/v1/task/complete", handleComplete),
    "/healthz": only("GET", () => json(200, { status: "ok" })),
    "/readyz": only("GET", async () => {
      try {
        await d.sql`SELECT 1`;
        return json(200, { status: "ready" });
      } catch {
        return problem(503, "not_ready", "the state database is unreachable");
      }
    }),
    "/metrics": only("GET", async () => {
      const outboxBacklog = await outboxPendingCount(d.sql).catch(() => null);
      const text = d.metrics.render({ outboxBacklog });
      return new Response(text, { headers: { "content-type": "text/plain; version=0.0.4" } });
    }),
    "/.well-known/jwks.json": only("GET", () => json(200, { keys: d.ring.jwks })),
  };
}

export async function startDispatcher(cfg: Config, port = cfg.port): Promise<RunningDispatcher> {
  const internalToken = requireInternalAuthToken(cfg);
  const objectStoreUrl = requireObjectStore(cfg);
  const log = createLogger("dispatcher");
  const sql: Sql = connect(requireStateDatabase(cfg), { name: "dispatcher", max: POOL_SIZE });
  const ring = await loadKeyRing(cfg, sql);
  const metrics = createMetrics();
  const drainerWake = new EventTarget();
  const d: Deps = {
    sql,
    ring,
    verifier: createVerifier(ring),
    metrics,
    log,
    lease: { leaseMs: cfg.leaseDurationMs, maxAttempts: cfg.maxAttempts },
    batch: { objectStoreUrl, maxBatchBytes: cfg.maxBatchBytes },
    capabilityTtlMs: cfg.capability.ttlMs ?? DEFAULT_TTL_MS + cfg.leaseDurationMs,
    internalAuth: bearerCheck(internalToken),
    wakeDrainer: () => drainerWake.dispatchEvent(new Event("wake")),
  };
  const abort = new AbortController();
  const loops = [
    runDrainer(sql, { signal: abort.signal, wake: drainerWake, log, metrics }),
    runReaper(sql, { leaseMs: cfg.leaseDurationMs, signal: abort.signal, log, metrics }),
  ];
  let server: Server<undefined>;
  try {
    server = Bun.serve({
      port,
      maxRequestBodySize: HARD_BODY_BYTES,
      routes: routes(d),
      fetch: () => problem(404, "not_found", "no such endpoint"),
      error: (err) => {
        log.error("unhandled request error", { err });
        return problem(500, "internal", "internal error");
      },
    });
  } catch (cause) {
    abort.abort();
    await Promise.allSettled(loops);
    await sql.end({ timeout: 5 });
    throw new Error(`listening on port ${port}`, { cause });
  }
  const bound = server.port ?? port;
  log.info("dispatcher listening", { port: bound, keys: ring.source, kid: ring.signing.kid });
  return {
    port: bound,
    async stop() {
      await server.stop();
      abort.abort();
      await Promise.allSettled(loops);
      await sql.end({ timeout: 5 });
      log.info("dispatcher stopped");
    },
  };
}
