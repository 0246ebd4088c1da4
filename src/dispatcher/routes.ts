import { isTransientDbError } from "../db/errors";
import type { Logger } from "../log";
import { outboxPendingCount } from "../outbox/sql";
import {
  type Deps,
  handleBacklog,
  handleBufferPublish,
  handleClaim,
  handleComplete,
  handleFail,
  handleHeartbeat,
} from "./handlers";
import { type Handler, json, only, problem } from "./http";
import type { Metrics } from "./metrics";

/**
 * The dispatcher's route table: `routeTable(d)` for Bun.serve's `routes`,
 * and `routes(d)`, the same table as one function from Request to Response,
 * so tests call the API in-process (Hono's `app.request`):
 *
 *   const res = await routes(d)(new Request("http://x/v1/task/heartbeat", { method: "POST", … }));
 */

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

export function routeTable(d: Deps): Record<string, Handler> {
  const post = (route: string, h: (d: Deps, req: Request) => Promise<Response>) =>
    timed(
      route,
      d.metrics,
      d.log,
      only("POST", (req) => h(d, req)),
    );
  return {
    "/internal/task-claim": post("/internal/task-claim", handleClaim),
    "/v1/task/heartbeat": post("/v1/task/heartbeat", handleHeartbeat),
    "/v1/task/buffer-publish": post("/v1/task/buffer-publish", handleBufferPublish),
    "/v1/task/complete": post("/v1/task/complete", handleComplete),
    "/v1/task/fail": post("/v1/task/fail", handleFail),
    "/internal/backlog": timed(
      "/internal/backlog",
      d.metrics,
      d.log,
      only("GET", (req) => handleBacklog(d, req)),
    ),
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

/** Any path the table does not name. */
export const notFound: Handler = () => problem(404, "not_found", "no such endpoint");

/** The whole API as one function (in-process tests). */
export function routes(d: Deps): Handler {
  const table = routeTable(d);
  return (req) => (table[new URL(req.url).pathname] ?? notFound)(req);
}
