import * as v from "valibot";
import { AnyObject, Attributes, OccurredAt, Severity } from "./common";

/** The largest task payload, as JSON (UTF-8). */
export const MAX_TASK_PAYLOAD_BYTES = 64 * 1024;

const utf8 = new TextEncoder();

/**
 * The size check of TaskPayload. Exported (as the very object used in the
 * pipe) so the JSON Schema export can recognise it and say it in a comment.
 */
export const payloadWithinLimit = v.check<{ [key: string]: unknown }, string>(
  (o) => utf8.encode(JSON.stringify(o)).byteLength <= MAX_TASK_PAYLOAD_BYTES,
  `must be at most ${MAX_TASK_PAYLOAD_BYTES} bytes as JSON`,
);

/**
 * A task's payload: any JSON object of at most 64 KiB. What it means is the
 * worker's business: a task program (`harness worker --exec`) reads it on
 * stdin; the default worker needs a SyntheticPayload.
 */
export const TaskPayload = v.pipe(AnyObject, payloadWithinLimit);
export type TaskPayload = v.InferOutput<typeof TaskPayload>;

/** An alert given explicitly in a task payload; org_id always comes from the task. */
export const ExplicitAlert = v.strictObject({
  dedupe_key: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  source: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  severity: Severity,
  title: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)),
  occurred_at: OccurredAt,
  attributes: v.optional(Attributes),
});
export type ExplicitAlert = v.InferOutput<typeof ExplicitAlert>;

export const MAX_ALERTS_PER_TASK = 100_000;
export const MAX_WORK_MS = 3_600_000;

/**
 * The payload the default worker (no `--exec`) makes its batch from:
 * `{alerts: N, work_ms?}` (N deterministic alerts) or `{alerts: [...],
 * work_ms?}` (explicit alerts).
 */
export const SyntheticPayload = v.strictObject({
  alerts: v.union([
    v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_ALERTS_PER_TASK)),
    v.pipe(v.array(ExplicitAlert), v.maxLength(MAX_ALERTS_PER_TASK)),
  ]),
  work_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_WORK_MS))),
});
export type SyntheticPayload = v.InferOutput<typeof SyntheticPayload>;
