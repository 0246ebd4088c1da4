import type * as v from "valibot";
import { type CapabilityClaims, SCOPES, type Scope } from "../contracts/capability";
import {
  BufferPublishRequest,
  type BufferPublishResponse,
  ClaimRequest,
  type ClaimResponse,
  CompleteRequest,
  type CompleteResponse,
  HeartbeatRequest,
  type HeartbeatResponse,
} from "../contracts/http";
import type { Sql } from "../db/connect";
import type { Logger } from "../log";
import type { BatchRules } from "./batch";
import { authorise, issueCapability, type Verifier } from "./capability";
import { CAPABILITY_HEADER, json, problem, readBody } from "./http";
import type { KeyRing } from "./keys";
import { claimTask, completeTask, type LeaseRules, publishBuffer, renewLease } from "./lease";
import type { Metrics } from "./metrics";

/**
 * The task endpoints. Each parses, authorises, calls one domain function
 * from ./lease.ts and maps its result to a status code; no SQL here.
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
}

function refuse(d: Deps, endpoint: string, status: number, code: string, msg: string): Response {
  d.metrics.refusals.inc({ endpoint, reason: code });
  d.log.debug("refused", { endpoint, status, reason: code, detail: msg });
  return problem(status, code, msg);
}

export async function handleClaim(d: Deps, req: Request): Promise<Response> {
  const endpoint = "task-claim";
  if (!d.internalAuth(req)) {
    return refuse(
      d,
      endpoint,
      401,
      "unauthorized",
      "Authorization: Bearer <INTERNAL_AUTH_TOKEN> required",
    );
  }
  const body = await readBody(req, ClaimRequest);
  if (!body.ok) return body.response;
  const taskId = body.value.task_id;
  const r = await claimTask(d.sql, { taskId, ...d.lease });
  d.metrics.claims.inc({ outcome: r.kind });
  switch (r.kind) {
    case "claimed": {
      const payload = r.payload;
      const ttlMs = d.capabilityTtlMs;
      const token = await issueCapability(d.ring, { ...r, taskId, ttlMs });
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
    case "not_found":
      return refuse(d, endpoint, 404, "not_found", "no such task");
  }
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
const stale = (d: Deps, endpoint: string) =>
  refuse(d, endpoint, 409, "stale_lease", "this attempt no longer holds a live lease");
const wrongOrg = (d: Deps, endpoint: string) =>
  refuse(
    d,
    endpoint,
    403,
    "capability_mismatch",
    "the capability token is for another org than the task's",
  );

export async function handleHeartbeat(d: Deps, req: Request): Promise<Response> {
  const a = await authorised(d, req, "heartbeat", SCOPES.heartbeat, HeartbeatRequest);
  if (!a.ok) return a.response;
  const r = await renewLease(d.sql, { ...fence(a.body, a.claims), leaseMs: d.lease.leaseMs });
  if (r.kind === "stale") return stale(d, "heartbeat");
  if (r.kind === "wrong_org") return wrongOrg(d, "heartbeat");
  const res: HeartbeatResponse = { lease_expires_at: r.leaseExpiresAt.toISOString() };
  return json(200, res);
}

export async function handleBufferPublish(d: Deps, req: Request): Promise<Response> {
  const endpoint = "buffer-publish";
  const a = await authorised(d, req, endpoint, SCOPES.bufferPublish, BufferPublishRequest);
  if (!a.ok) return a.response;
  const b = a.body;
  const r = await publishBuffer(d.sql, {
    ...fence(b, a.claims),
    batchUri: b.batch_uri,
    contentType: b.content_type,
    batchSizeBytes: b.batch_size_bytes,
    rules: d.batch,
  });
  if (r.kind === "stale") return stale(d, endpoint);
  if (r.kind === "wrong_org") return wrongOrg(d, endpoint);
  if (r.kind === "invalid") return refuse(d, endpoint, 422, "invalid_batch", r.message);
  d.wakeDrainer();
  d.log.info("batch accepted", { task_id: b.task_id, attempt: b.attempt, batch_uri: b.batch_uri });
  const res: BufferPublishResponse = { accepted: true, batch_uri: b.batch_uri };
  return json(202, res);
}

export async function handleComplete(d: Deps, req: Request): Promise<Response> {
  const a = await authorised(d, req, "complete", SCOPES.complete, CompleteRequest);
  if (!a.ok) return a.response;
  const r = await completeTask(d.sql, fence(a.body, a.claims));
  if (r.kind === "stale") return stale(d, "complete");
  if (r.kind === "wrong_org") return wrongOrg(d, "complete");
  if (!r.repeated) {
    d.wakeDrainer();
    d.log.info("task succeeded", { task_id: a.body.task_id, attempt: a.body.attempt });
  }
  const res: CompleteResponse = {
    task_id: a.body.task_id,
    attempt: a.body.attempt,
    status: "succeeded",
  };
  return json(200, res);
}
