import type * as v from "valibot";
import { type CapabilityClaims, SCOPES, type Scope } from "../contracts/capability";
import {
  type BacklogResponse,
  BufferPublishRequest,
  type BufferPublishResponse,
  ClaimRequest,
  type ClaimResponse,
  CompleteRequest,
  type CompleteResponse,
  FailRequest,
  type FailResponse,
  HeartbeatRequest,
  type HeartbeatResponse,
} from "../contracts/http";
import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import { backlogCounts } from "../reads/backlog";
import type { BatchRules } from "./batch";
import { authorise, signCapability, type Verifier } from "./capability";
import type { Claimer } from "./claims";
import type { Completer } from "./completes";
import { CAPABILITY_HEADER, json, problem, readBody } from "./http";
import type { KeyRing } from "./keys";
import {
  type BatchRefused,
  claimTask,
  completeTask,
  failTask,
  type LeaseRules,
  publishBuffer,
  type Refused,
  renewLease,
} from "./lease";
import type { Metrics } from "./metrics";
import type { BatchPublisher } from "./publishes";
import type { Renewer } from "./renewals";

/**
 * The task endpoints. Each parses, authorises, calls one domain function
 * from ./lease.ts (or one read, for the backlog) and maps its result to a
 * status code; no SQL here.
 */

export interface Deps {
  sql: Sql;
  ring: KeyRing;
  verifier: Verifier;
  metrics: Metrics;
  log: Logger;
  lease: LeaseRules;
  batch: BatchRules;
  capabilityTtlMs: number;
  internalAuth: (req: Request) => boolean;
  /** After a call committed outbox rows: this dispatcher's drainer publishes them now. */
  wakeDrainer: () => void;
  /** Merges concurrent claims into shared statements (./claims.ts); unset: one statement each. */
  claimer?: Claimer;
  /** Merges concurrent completes into shared statements (./completes.ts); unset: one each. */
  completer?: Completer;
  /** Merges concurrent buffer-publishes into shared statements (./publishes.ts); unset: one each. */
  publisher?: BatchPublisher;
  /** Merges concurrent heartbeats into shared statements (./renewals.ts); unset: one each. */
  renewer?: Renewer;
}

function refuse(d: Deps, endpoint: string, status: number, code: string, msg: string): Response {
  d.metrics.refusals.inc({ endpoint, reason: code });
  d.log.debug("refused", { endpoint, status, reason: code, detail: msg });
  return problem(status, code, msg);
}

/** 401 for an `/internal/*` call without the internal token. */
const unauthorized = (d: Deps, endpoint: string) =>
  refuse(d, endpoint, 401, "unauthorized", "Authorization: Bearer <INTERNAL_AUTH_TOKEN> required");

export async function handleClaim(d: Deps, req: Request): Promise<Response> {
  const endpoint = "task-claim";
  if (!d.internalAuth(req)) return unauthorized(d, endpoint);
  const body = await readBody(req, ClaimRequest);
  if (!body.ok) return body.response;
  const taskId = body.value.task_id;
  const r = await claimTask(d.sql, { taskId, ...d.lease }, d.claimer);
  d.metrics.claims.inc({ outcome: r.kind });
  switch (r.kind) {
    case "claimed": {
      const payload = r.payload;
      const ttlMs = d.capabilityTtlMs;
      const { token, claims } = await signCapability(d.ring, { ...r, taskId, ttlMs });
      d.verifier.remember(token, claims);
      d.log.debug("claimed", { task_id: taskId, attempt: r.attempt });
      const res: ClaimResponse = {
        task_id: taskId,
        org_id: r.orgId,
        attempt: r.attempt,
        lease_token: r.leaseToken,
        lease_expires_at: r.leaseExpiresAt.toISOString(),
        capability_token: token,
        payload,
      };
      return json(200, res);
    }
    case "exhausted":
      d.log.warn("task failed: max attempts reached", { task_id: taskId, attempt: r.attempt });
      return refuse(d, endpoint, 409, "task_finished", `task failed after ${r.attempt} attempts`);
    case "finished":
      return refuse(d, endpoint, 409, "task_finished", `task already ${r.status}`);
    case "invalid_payload":
      d.log.error("task failed: invalid payload", { task_id: taskId, reason: r.reason });
      return refuse(d, endpoint, 409, "task_finished", `task failed: ${r.reason}`);
    case "lease_active":
      return refuse(d, endpoint, 409, "lease_active", "another attempt holds a live lease");
    case "retry_pending": {
      const msg = `the task's retry is due at ${r.retryAt.toISOString()}`;
      const res = refuse(d, endpoint, 409, "retry_pending", msg);
      res.headers.set("Retry-After", String(Math.max(1, Math.ceil(r.retryInMs / 1000))));
      return res;
    }
    case "not_found":
      return refuse(d, endpoint, 404, "not_found", "no such task");
  }
}

/** The work still in the pipeline, for `worker --until-idle` (which may not read the tables). */
export async function handleBacklog(d: Deps, req: Request): Promise<Response> {
  if (!d.internalAuth(req)) return unauthorized(d, "backlog");
  const res: BacklogResponse = await backlogCounts(d.sql);
  return json(200, res);
}

type Body = { task_id: string; attempt: number; lease_token: string };

/** Token, body, binding and scope, in that order: 401, 400, 403. */
async function authorised<S extends v.GenericSchema<unknown, Body>>(
  d: Deps,
  req: Request,
  endpoint: string,
  scope: Scope,
  schema: S,
): Promise<
  { ok: true; body: v.InferOutput<S>; claims: CapabilityClaims } | { ok: false; response: Response }
> {
  const token = req.headers.get(CAPABILITY_HEADER);
  if (token === null || token === "") {
    const response = refuse(
      d,
      endpoint,
      401,
      "missing_capability",
      `${CAPABILITY_HEADER} required`,
    );
    return { ok: false, response };
  }
  const verified = await d.verifier.verify(token);
  if (!verified.ok) {
    return { ok: false, response: refuse(d, endpoint, 401, "invalid_capability", verified.reason) };
  }
  const body = await readBody(req, schema);
  if (!body.ok) return body;
  const granted = authorise(verified.claims, scope, body.value);
  if (!granted.ok) {
    return { ok: false, response: refuse(d, endpoint, 403, granted.code, granted.message) };
  }
  return { ok: true, body: body.value, claims: verified.claims };
}

const fence = (b: Body, claims: CapabilityClaims) => ({
  taskId: b.task_id,
  attempt: b.attempt,
  leaseToken: b.lease_token,
  orgId: claims.org_id,
});

/** A batch as the body names it, as ./batch.ts checks it. */
const batchRef = (b: { batch_uri: string; content_type: string; batch_size_bytes: number }) => ({
  batchUri: b.batch_uri,
  contentType: b.content_type,
  batchSizeBytes: b.batch_size_bytes,
});

/**
 * The refusals of fenced calls: those of every one, 409 `stale_lease` and
 * 403 `capability_mismatch`, and those of a call carrying a batch, 422.
 */
function refused(d: Deps, endpoint: string, r: Refused | BatchRefused): Response {
  switch (r.kind) {
    case "stale":
      return refuse(d, endpoint, 409, "stale_lease", "this attempt no longer holds a live lease");
    case "wrong_org": {
      const msg = "the capability token is for another org than the task's";
      return refuse(d, endpoint, 403, "capability_mismatch", msg);
    }
    case "invalid":
      return refuse(d, endpoint, 422, "invalid_batch", r.message);
    case "too_many_batches": {
      const msg = `an attempt may publish at most ${r.max} batches (MAX_BATCHES_PER_ATTEMPT)`;
      return refuse(d, endpoint, 422, "too_many_batches", msg);
    }
  }
}

export async function handleHeartbeat(d: Deps, req: Request): Promise<Response> {
  const a = await authorised(d, req, "heartbeat", SCOPES.heartbeat, HeartbeatRequest);
  if (!a.ok) return a.response;
  const lease = { ...fence(a.body, a.claims), leaseMs: d.lease.leaseMs };
  const r = await renewLease(d.sql, lease, d.renewer);
  if (r.kind !== "renewed") return refused(d, "heartbeat", r);
  const res: HeartbeatResponse = { lease_expires_at: r.leaseExpiresAt.toISOString() };
  return json(200, res);
}

export async function handleBufferPublish(d: Deps, req: Request): Promise<Response> {
  const endpoint = "buffer-publish";
  const a = await authorised(d, req, endpoint, SCOPES.bufferPublish, BufferPublishRequest);
  if (!a.ok) return a.response;
  const b = a.body;
  const r = await publishBuffer(
    d.sql,
    {
      ...fence(b, a.claims),
      ...batchRef(b),
      rules: d.batch,
    },
    d.publisher,
  );
  if (r.kind !== "accepted") return refused(d, endpoint, r);
  if (!r.repeat) {
    d.wakeDrainer();
    d.log.info("batch accepted", {
      task_id: b.task_id,
      attempt: b.attempt,
      batch_uri: b.batch_uri,
    });
  }
  const res: BufferPublishResponse = { accepted: true, batch_uri: b.batch_uri };
  return json(202, res);
}

export async function handleComplete(d: Deps, req: Request): Promise<Response> {
  const endpoint = "complete";
  const a = await authorised(d, req, endpoint, SCOPES.complete, CompleteRequest);
  if (!a.ok) return a.response;
  const b = a.body.batch;
  // A batch is published as buffer-publish would: the token needs that scope too.
  const publishing = b === undefined ? null : authorise(a.claims, SCOPES.bufferPublish, a.body);
  if (publishing?.ok === false) {
    return refuse(d, endpoint, 403, publishing.code, publishing.message);
  }
  const batch = b === undefined ? {} : { batch: batchRef(b) };
  const call = { ...fence(a.body, a.claims), ...batch, rules: d.batch };
  const r = await completeTask(d.sql, call, d.completer);
  if (r.kind === "unpublished") {
    const msg = "this attempt already completed without publishing this batch";
    return refuse(d, endpoint, 409, "batch_not_published", msg);
  }
  if (r.kind !== "completed") return refused(d, endpoint, r);
  if (!r.repeated) {
    d.wakeDrainer();
    const scope = { task_id: a.body.task_id, attempt: a.body.attempt };
    d.log.info("task succeeded", b === undefined ? scope : { ...scope, batch_uri: b.batch_uri });
  }
  const res: CompleteResponse = {
    task_id: a.body.task_id,
    attempt: a.body.attempt,
    status: "succeeded",
  };
  return json(200, res);
}

export async function handleFail(d: Deps, req: Request): Promise<Response> {
  const a = await authorised(d, req, "fail", SCOPES.fail, FailRequest);
  if (!a.ok) return a.response;
  const b = a.body;
  const r = await failTask(d.sql, {
    ...fence(b, a.claims),
    reason: b.reason,
    retryable: b.retryable,
    rules: d.lease,
  });
  if (r.kind !== "requeued" && r.kind !== "failed") return refused(d, "fail", r);
  const scope = { task_id: b.task_id, attempt: b.attempt, reason: b.reason };
  if (r.kind === "requeued") {
    d.wakeDrainer();
    d.log.info("attempt failed; task requeued", { ...scope, retry_at: r.retryAt.toISOString() });
  } else d.log.warn("task failed", scope);
  const res: FailResponse = {
    task_id: b.task_id,
    attempt: b.attempt,
    status: r.kind === "requeued" ? "queued" : "failed",
    retry_at: r.kind === "requeued" ? r.retryAt.toISOString() : null,
  };
  return json(200, res);
}
