import * as v from "valibot";
import { Attempt, LeaseToken, NDJSON, OrgId, Rfc3339, Uuid } from "./common";
import { TaskPayload } from "./task";

/** Request and response bodies of the dispatcher's HTTP API. Requests are strict. */

export const ErrorBody = v.strictObject({
  error: v.pipe(v.string(), v.regex(/^[a-z_]+$/)),
  message: v.string(),
});
export type ErrorBody = v.InferOutput<typeof ErrorBody>;

export const ClaimRequest = v.strictObject({ task_id: Uuid });
export type ClaimRequest = v.InferOutput<typeof ClaimRequest>;

export const ClaimResponse = v.strictObject({
  task_id: Uuid,
  org_id: OrgId,
  attempt: Attempt,
  lease_token: LeaseToken,
  lease_expires_at: Rfc3339,
  capability_token: v.pipe(v.string(), v.minLength(1)),
  payload: TaskPayload,
});
export type ClaimResponse = v.InferOutput<typeof ClaimResponse>;

const Fence = { task_id: Uuid, attempt: Attempt, lease_token: LeaseToken };

export const HeartbeatRequest = v.strictObject(Fence);
export type HeartbeatRequest = v.InferOutput<typeof HeartbeatRequest>;

export const HeartbeatResponse = v.strictObject({ lease_expires_at: Rfc3339 });
export type HeartbeatResponse = v.InferOutput<typeof HeartbeatResponse>;

/** A written batch, as buffer-publish and complete carry it. */
const Batch = {
  batch_uri: v.pipe(v.string(), v.minLength(1), v.maxLength(2048)),
  content_type: v.string(),
  batch_size_bytes: v.pipe(v.number(), v.integer()),
};

export const BufferPublishRequest = v.strictObject({ ...Fence, ...Batch });
export type BufferPublishRequest = v.InferOutput<typeof BufferPublishRequest>;

export const BufferPublishResponse = v.strictObject({
  accepted: v.literal(true),
  batch_uri: v.string(),
});
export type BufferPublishResponse = v.InferOutput<typeof BufferPublishResponse>;

/**
 * The fence, and optionally the attempt's one batch: then the complete also
 * does what a buffer-publish of it would, in the same statement.
 */
export const CompleteRequest = v.strictObject({
  ...Fence,
  batch: v.optional(v.strictObject(Batch)),
});
export type CompleteRequest = v.InferOutput<typeof CompleteRequest>;

export const CompleteResponse = v.strictObject({
  task_id: Uuid,
  attempt: Attempt,
  status: v.literal("succeeded"),
});
export type CompleteResponse = v.InferOutput<typeof CompleteResponse>;

/** The longest failure reason a fail call may carry. */
export const MAX_FAIL_REASON = 4096;

export const FailRequest = v.strictObject({
  ...Fence,
  reason: v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_FAIL_REASON)),
  retryable: v.boolean(),
});
export type FailRequest = v.InferOutput<typeof FailRequest>;

/** `queued` with the time its wakeup is due, or `failed` for good (`retry_at` null). */
export const FailResponse = v.strictObject({
  task_id: Uuid,
  attempt: Attempt,
  status: v.picklist(["queued", "failed"]),
  retry_at: v.nullable(Rfc3339),
});
export type FailResponse = v.InferOutput<typeof FailResponse>;

/** `GET /internal/backlog` counts at most this many of each: a count at the cap means at least that many. */
export const BACKLOG_CAP = 10_000;
const BacklogCount = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(BACKLOG_CAP));

/**
 * The work still in the pipeline, for `worker --until-idle`, which may not
 * read `state.tasks` or `state.outbox` itself: outbox rows not yet published,
 * tasks `queued` (a retry waiting for its backoff included) and `running`.
 */
export const BacklogResponse = v.strictObject({
  outbox_pending: BacklogCount,
  tasks_queued: BacklogCount,
  tasks_running: BacklogCount,
});
export type BacklogResponse = v.InferOutput<typeof BacklogResponse>;

export { NDJSON };
