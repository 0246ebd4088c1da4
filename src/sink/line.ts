import * as v from "valibot";
import { acceptorOf } from "../contracts/accept";
import { AlertLine } from "../contracts/alert";
import { MAX_EXACT_INTEGER } from "../contracts/storable";
import { ruleOnly } from "../issue-text";

/**
 * One line of a batch, as text: the alert it holds, or why it is refused.
 * What a line may say is the AlertLine contract's alone (src/contracts/): it
 * is run here as it is, with no copy: first as its fast yes (an acceptor
 * read off the schema, src/contracts/accept.ts), then, for a line that does
 * not pass, as valibot, whose verdict and issue stand. Only what is about
 * the JSON text is checked here: that it parses to an object, the task's
 * org, numbers the text spells more exactly than a double keeps, and the
 * U+0000 and lone surrogates a `\u` escape can smuggle in (valid JSON, so
 * valid for the contract, but PostgreSQL cannot store them).
 *
 * A reason names the field and the rule, never bytes of the line: no parser
 * message, no received value, no unknown key's name.
 */

const FIELDS: ReadonlySet<string> = new Set(Object.keys(AlertLine.entries));
/** A valid line's fast yes (src/contracts/accept.ts); anything else is valibot's to judge. */
const isAlertLine = acceptorOf(AlertLine) ?? ((_: unknown): _ is AlertLine => false);

function issueText(issue: v.BaseIssue<unknown> | undefined): string {
  if (issue === undefined) return "invalid";
  const field = issue.path?.[0]?.key;
  if (typeof field !== "string" || !FIELDS.has(field)) return "an unknown field";
  if (issue.type === "strict_object") return `${field}: missing`;
  return `${field}: ${issue.message}`;
}

/**
 * A number the text may spell more exactly than a double keeps: 16 or more
 * digits (and dots) in a row, or a three-digit exponent. With at most 15
 * significant digits and a smaller exponent a decimal survives a double
 * unchanged (DBL_DIG), so only lines with such a number are parsed again with
 * their source text. A JSON number always follows `:`, `,` or `[` (and
 * perhaps whitespace), which keeps digits inside strings (UUIDs, times)
 * from matching.
 */
const MAYBE_INEXACT = /[:,[]\s*-?\d(?:[\d.]{15}|[\d.]*[eE][+-]?\d{3})/;

/** `digits`×10^`exp` with no leading or trailing zeros, signed: equal values, equal text. */
function canonicalDecimal(s: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(s);
  if (m === null) return s;
  const all = (m[2] ?? "") + (m[3] ?? "");
  const digits = all.replace(/^0+/, "");
  const trimmed = digits.replace(/0+$/, "");
  if (trimmed === "") return "0";
  const exp = Number(m[4] ?? 0) - (m[3]?.length ?? 0) + (digits.length - trimmed.length);
  return `${m[1]}${trimmed}e${exp}`;
}

/**
 * Whether a number in the text is not the double it parses to: more
 * significant digits than a double keeps (`0.1000000000000000055511`), or
 * an underflow to zero (`1e-400`). Non-finite values and integers beyond
 * ±2^53 are left to the contract, which sees them in the parsed value.
 */
function hasInexactNumber(text: string): boolean {
  let inexact = false;
  JSON.parse(text, (_key: string, value: unknown, ...context: unknown[]) => {
    const source = context[0];
    if (
      typeof value === "number" &&
      Number.isFinite(value) &&
      Math.abs(value) <= MAX_EXACT_INTEGER &&
      typeof source === "object" &&
      source !== null &&
      "source" in source &&
      typeof source.source === "string" &&
      canonicalDecimal(source.source) !== canonicalDecimal(String(value))
    ) {
      inexact = true;
    }
    return value;
  });
  return inexact;
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

/** Valibot's verdict on a line the fast yes did not pass: the alert, or the reason. */
function judged(parsed: object): AlertLine | string {
  const result = v.safeParse(AlertLine, parsed, { abortEarly: true, message: ruleOnly });
  return result.success ? result.output : issueText(result.issues[0]);
}

/** Parses and checks one line of text: the alert, or the reason it is refused. */
export function parseLine(text: string, orgId: string): AlertLine | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text.trim() === "" ? "empty line" : "not JSON";
  }
  // The contract refuses these too; this only says it plainly (valibot would name an array's "0" key).
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return "not a JSON object";
  }
  const alert = isAlertLine(parsed) ? parsed : judged(parsed);
  if (typeof alert === "string") return alert;
  if (alert.org_id !== orgId) return `org_id: not the task's org ${JSON.stringify(orgId)}`;
  // Numbers are only valid in attributes (the contract checked every other field's type).
  if (MAYBE_INEXACT.test(text) && hasInexactNumber(text)) {
    return "attributes: a number has more digits than a 64-bit float keeps, so it would not be stored as sent";
  }
  // Cheap pre-filter: both can only come from \u escapes (the bytes were valid UTF-8).
  // Safe to recurse: the contract bounds the nesting of attributes, the only nested field.
  if (text.includes("\\u") && unstorable(parsed)) {
    return "contains U+0000 or a lone surrogate (\\u escape), which the database cannot store";
  }
  return alert;
}
