import * as v from "valibot";
import { parseConfig } from "../../src/config";
import { ClaimResponse } from "../../src/contracts/http";
import type { Sql } from "../../src/db/connect";
import { createVerifier, issueCapability } from "../../src/dispatcher/capability";
import type { Deps } from "../../src/dispatcher/handlers";
import type { Handler } from "../../src/dispatcher/http";
import { loadKeyRing } from "../../src/dispatcher/keys";
import type { LeaseRules } from "../../src/dispatcher/lease";
import { createMetrics } from "../../src/dispatcher/metrics";
import { routes } from "../../src/dispatcher/routes";
import { createLogger, setLogLevel } from "../../src/log";
import { HEADER } from "./_client";

/**
 * The dispatcher's API in-process (Hono's `app.request`): the real route
 * table, handlers, capability tokens and SQL on a real database, called as
 * `app(new Request(…))`, with no server and no drainer (outbox rows stay
 * pending, where the tests look at them).
 */

export const STORE = "file:///tmp/harness-inprocess-objects";
export const INTERNAL = "inprocess-internal-token-0123";

export interface InProcess {
  d: Deps;
  app: Handler;
  /** POST a JSON body (or a raw string) to a path, with a capability token or none. */
  post(path: string, body: unknown, token?: string): Promise<Response>;
  claim(taskId: string): Promise<ClaimResponse>;
  /** A token the dispatcher's own key signed, for any claims (another org's, fewer scopes). */
  token(p: { orgId: string; taskId: string; attempt: number; scope?: string }): Promise<string>;
}

export async function inProcess(
  sql: Sql,
  rules: Partial<LeaseRules> & { maxBatchesPerAttempt?: number } = {},
): Promise<InProcess> {
  // Refusals and failures are what these tests provoke: keep their log lines out of the output.
  setLogLevel("error");
  const cfg = parseConfig({});
  const ring = await loadKeyRing(cfg, sql);
  const d: Deps = {
    sql,
    ring,
    verifier: createVerifier(ring, { maxLifetimeMs: 600_000 }),
    metrics: createMetrics(),
    log: createLogger("dispatcher-test"),
    lease: { leaseMs: 30_000, maxAttempts: 3, ...rules },
    batch: {
      objectStoreUrl: STORE,
      maxBatchBytes: 1_000_000,
      maxBatchesPerAttempt: rules.maxBatchesPerAttempt ?? 16,
    },
    capabilityTtlMs: 600_000,
    internalAuth: (req) => req.headers.get("authorization") === `Bearer ${INTERNAL}`,
    wakeDrainer: () => {},
  };
  const app = routes(d);
  const post = (path: string, body: unknown, token?: string) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== undefined) headers[HEADER] = token;
    if (path === "/internal/task-claim") headers.authorization = `Bearer ${INTERNAL}`;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return Promise.resolve(
      app(new Request(`http://dispatcher${path}`, { method: "POST", headers, body: text })),
    );
  };
  return {
    d,
    app,
    post,
    async claim(taskId) {
      const res = await post("/internal/task-claim", { task_id: taskId });
      const body: unknown = await res.json();
      if (res.status !== 200)
        throw new Error(`claim answered ${res.status}: ${JSON.stringify(body)}`);
      return v.parse(ClaimResponse, body);
    },
    token: (p) => issueCapability(ring, { ...p, ttlMs: 600_000 }),
  };
}

/** Ends a lease now, by the database clock, as if it ran out. */
export async function expireLease(sql: Sql, taskId: string): Promise<void> {
  await sql`UPDATE state.tasks SET lease_expires_at = now() - interval '1 millisecond' WHERE id = ${taskId}`;
}

/** Ends a retryable failure's backoff now, by the database clock, as if it ran out. */
export async function retryDue(sql: Sql, taskId: string): Promise<void> {
  await sql`UPDATE state.tasks SET retry_at = now() - interval '1 millisecond' WHERE id = ${taskId}`;
}

/**
 * Everything a task API call could change for one task, row versions
 * included: an UPDATE that matched the row changes its `xmin` even when it
 * wrote the same values, so equal snapshots mean no row was updated.
 */
export async function snapshot(sql: Sql, taskId: string) {
  const [task] = await sql`
    SELECT xmin::text AS xmin, status, attempt, lease_token, lease_expires_at, last_error,
           updated_at, finished_at, attempt_batches, retry_at
    FROM state.tasks WHERE id = ${taskId}`;
  const attempts = await sql`
    SELECT xmin::text AS xmin, attempt, ended_at, outcome, reason FROM state.task_attempts
    WHERE task_id = ${taskId} ORDER BY attempt`;
  const outbox = await sql`
    SELECT id, queue_name, payload, attempt, status, available_at FROM state.outbox
    WHERE task_id = ${taskId} ORDER BY id`;
  return { task, attempts: [...attempts], outbox: [...outbox] };
}
