import * as v from "valibot";
import { Attempt, OrgId, Uuid } from "./common";

/** The capability token: a JWS the dispatcher signs, bound to one task attempt. */

export const CAPABILITY_TYP = "harness-capability+jwt";
export const CAPABILITY_ALGS = ["EdDSA"] as const;
export const CAPABILITY_ISSUER = "harness-dispatcher";
export const CAPABILITY_AUDIENCE = "harness-task-api";
/** The request header every `/v1/task/*` call carries its capability token in. */
export const CAPABILITY_HEADER = "X-Trace-Task-Capability";

export const SCOPES = {
  heartbeat: "task:heartbeat",
  bufferPublish: "task:buffer-publish",
  complete: "task:complete",
  fail: "task:fail",
} as const;
export type Scope = (typeof SCOPES)[keyof typeof SCOPES];

export const CapabilityHeader = v.strictObject({
  alg: v.picklist(CAPABILITY_ALGS),
  typ: v.literal(CAPABILITY_TYP),
  kid: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
});
export type CapabilityHeader = v.InferOutput<typeof CapabilityHeader>;

export const CapabilityClaims = v.strictObject({
  iss: v.literal(CAPABILITY_ISSUER),
  aud: v.literal(CAPABILITY_AUDIENCE),
  sub: v.pipe(v.string(), v.minLength(1)),
  iat: v.pipe(v.number(), v.integer()),
  nbf: v.pipe(v.number(), v.integer()),
  exp: v.pipe(v.number(), v.integer()),
  jti: Uuid,
  org_id: OrgId,
  task_id: Uuid,
  attempt: Attempt,
  scope: v.pipe(v.string(), v.minLength(1)),
});
export type CapabilityClaims = v.InferOutput<typeof CapabilityClaims>;
