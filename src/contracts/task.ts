import * as v from "valibot";
import { Attributes, Rfc3339, Severity } from "./common";

/** An alert given explicitly in a task payload; org_id always comes from the task. */
export const ExplicitAlert = v.strictObject({
  dedupe_key: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  source: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  severity: Severity,
  title: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)),
  occurred_at: Rfc3339,
  attributes: v.optional(Attributes),
});
export type ExplicitAlert = v.InferOutput<typeof ExplicitAlert>;

export const MAX_ALERTS_PER_TASK = 100_000;
export const MAX_WORK_MS = 3_600_000;

/**
 * A task payload: `{alerts: N, work_ms?}` (N deterministic alerts) or
 * `{alerts: [...], work_ms?}` (explicit alerts).
 */
export const TaskPayload = v.strictObject({
  alerts: v.union([
    v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_ALERTS_PER_TASK)),
    v.pipe(v.array(ExplicitAlert), v.maxLength(MAX_ALERTS_PER_TASK)),
  ]),
  work_ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_WORK_MS))),
});
export type TaskPayload = v.InferOutput<typeof TaskPayload>;
