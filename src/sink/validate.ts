import * as v from "valibot";
import { AlertLine } from "../contracts/alert";

/**
 * Batch validation: a JSONL batch is decoded and checked whole before any
 * write (invariant 5). The first problem makes the whole batch poison, and
 * its reason names the line and the field: `line 3: severity: Invalid type…`.
 * A valid batch comes out as columns, ready for one set-based insert.
 *
 * What a line may say is the AlertLine contract's alone (src/contracts/):
 * it is run here as it is, with no copy. Only what is about the batch is
 * checked here: strict UTF-8, every line ended by "\n", the task's org, and
 * the U+0000 and lone surrogates a `\u` escape can smuggle into JSON text
 * (valid JSON, so valid for the contract, but PostgreSQL cannot store them).
 */

export interface AlertColumns {
  dedupeKeys: string[];
  sources: string[];
  severities: string[];
  titles: string[];
  /** RFC 3339 text as written; the database parses it. */
  occurredAts: string[];
  /** `JSON.stringify` of each line's attributes (`{}` when absent). */
  attributes: string[];
}

export type BatchCheck = { ok: true; columns: AlertColumns } | { ok: false; reason: string };

const NEWLINE = 0x0a;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The 1-based line of the first byte sequence that is not UTF-8 (only run on failure). */
function firstBadUtf8Line(bytes: Uint8Array): number {
  let start = 0;
  let line = 1;
  while (start <= bytes.length) {
    let end = bytes.indexOf(NEWLINE, start);
    if (end < 0) end = bytes.length;
    try {
      strictUtf8.decode(bytes.subarray(start, end));
    } catch {
      return line;
    }
    start = end + 1;
    line++;
  }
  return line;
}

function issueText(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (issue === undefined) return "invalid";
  const path = v.getDotPath(issue);
  return path === null || path === "" ? issue.message : `${path}: ${issue.message}`;
}

/** PostgreSQL text and jsonb hold neither U+0000 nor lone surrogates; find either anywhere. */
export function unstorable(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000") || !value.isWellFormed();
  if (Array.isArray(value)) return value.some(unstorable);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([k, x]) => unstorable(k) || unstorable(x));
  }
  return false;
}

function emptyColumns(): AlertColumns {
  return {
    dedupeKeys: [],
    sources: [],
    severities: [],
    titles: [],
    occurredAts: [],
    attributes: [],
  };
}

/** Parses and checks one line: the alert, or the reason it is refused. */
function parseLine(text: string, orgId: string): AlertLine | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    if (text.trim() === "") return "empty line";
    return `not JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  // The contract refuses these too; this only says it plainly (valibot would name an array's "0" key).
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return "not a JSON object";
  }
  const result = v.safeParse(AlertLine, parsed, { abortEarly: true });
  if (!result.success) return issueText(result.issues);
  const alert = result.output;
  if (alert.org_id !== orgId) {
    return `org_id: ${JSON.stringify(alert.org_id)} is not the task's org ${JSON.stringify(orgId)}`;
  }
  // Cheap pre-filter: both can only come from \u escapes (the bytes were valid UTF-8).
  if (text.includes("\\u") && unstorable(parsed)) {
    return "contains U+0000 or a lone surrogate (\\u escape), which the database cannot store";
  }
  return alert;
}

function append(into: AlertColumns, alert: AlertLine): void {
  into.dedupeKeys.push(alert.dedupe_key);
  into.sources.push(alert.source);
  into.severities.push(alert.severity);
  into.titles.push(alert.title);
  into.occurredAts.push(alert.occurred_at);
  into.attributes.push(alert.attributes === undefined ? "{}" : JSON.stringify(alert.attributes));
}

/**
 * Decodes and validates a whole batch for the task's org. Strict UTF-8, one
 * JSON object per line, every line ended by "\n" (a missing final newline
 * means a truncated batch), every line an AlertLine of `orgId`.
 */
export function checkBatch(bytes: Uint8Array, orgId: string): BatchCheck {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return { ok: false, reason: `line ${firstBadUtf8Line(bytes)}: invalid UTF-8` };
  }
  if (text.length === 0) return { ok: false, reason: "empty batch" };
  const columns = emptyColumns();
  let start = 0;
  let line = 1;
  while (start < text.length) {
    const end = text.indexOf("\n", start);
    if (end < 0) {
      return { ok: false, reason: `line ${line}: truncated (the batch does not end with "\\n")` };
    }
    const alert = parseLine(text.slice(start, end), orgId);
    if (typeof alert === "string") return { ok: false, reason: `line ${line}: ${alert}` };
    append(columns, alert);
    start = end + 1;
    line++;
  }
  return { ok: true, columns };
}
