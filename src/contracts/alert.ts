import * as v from "valibot";
import { Attributes, OrgId, Rfc3339, Severity } from "./common";

/** One line of a batch (JSONL, `application/x-ndjson`). Strict: unknown keys are poison. */
export const AlertLine = v.strictObject({
  dedupe_key: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  org_id: OrgId,
  source: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  severity: Severity,
  title: v.pipe(v.string(), v.minLength(1), v.maxLength(1024)),
  occurred_at: Rfc3339,
  attributes: v.optional(Attributes),
});
export type AlertLine = v.InferOutput<typeof AlertLine>;
