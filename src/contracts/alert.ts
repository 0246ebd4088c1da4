import * as v from "valibot";
import { Attributes, OccurredAt, OrgId, Severity } from "./common";

/** Longest line of a batch, its "\n" included: the sink holds one line at a time, never more. */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * One line of a batch (JSONL, `application/x-ndjson`), at most MAX_LINE_BYTES.
 * Strict: unknown keys are poison. `dedupe_key` is unique within the task's
 * org: the same key from another org is another alert.
 */
export const AlertLine = v.strictObject({
  dedupe_key: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  org_id: OrgId,
  source: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  severity: Severity,
  title: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)),
  occurred_at: OccurredAt,
  attributes: v.optional(Attributes),
});
export type AlertLine = v.InferOutput<typeof AlertLine>;
