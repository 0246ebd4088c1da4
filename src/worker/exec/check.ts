import * as v from "valibot";
import { AlertLine } from "../../contracts/alert";
import { unstorable } from "../../sink/line";
import { dedupeKey } from "../alerts";

/**
 * One line a task program printed, made into a batch line: the org is the
 * task's (a line may leave `org_id` out, or give the task's own), a line
 * without `dedupe_key` gets one from the task id and its index — never the
 * attempt, so every attempt's lines collapse in the sink (invariant 7) — and
 * the result must pass the AlertLine contract, or the attempt fails naming
 * the line.
 */

/** Longest line a program may print; a longer one fails the attempt. */
export const MAX_LINE_BYTES = 1024 * 1024;

export interface LineContext {
  taskId: string;
  orgId: string;
}

export type Checked = { ok: true; json: string } | { ok: false; reason: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** `index` counts from 0 (it makes the dedupe key); the reason names line index + 1. */
export function checkLine(bytes: Uint8Array, index: number, ctx: LineContext): Checked {
  const at = `line ${index + 1}`;
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, reason: `${at} is not valid UTF-8` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: `${at} is not JSON: ${short(JSON.stringify(text))}` };
  }
  if (!isObject(value)) return { ok: false, reason: `${at} is not a JSON object` };
  if (value.org_id === undefined) value.org_id = ctx.orgId;
  else if (value.org_id !== ctx.orgId) {
    return {
      ok: false,
      reason: `${at} claims org_id ${short(JSON.stringify(value.org_id))}, not the task's org ${JSON.stringify(ctx.orgId)}`,
    };
  }
  if (value.dedupe_key === undefined) value.dedupe_key = dedupeKey(ctx.taskId, index);
  const parsed = v.safeParse(AlertLine, value, { abortEarly: true });
  if (!parsed.success) {
    return {
      ok: false,
      reason: `${at} breaks the AlertLine contract: ${v.summarize(parsed.issues).replace(/\s*\n\s*/g, "; ")}`,
    };
  }
  // The sink refuses these too (only a \u escape can make them, the bytes being valid UTF-8).
  if (text.includes("\\u") && unstorable(parsed.output)) {
    return {
      ok: false,
      reason: `${at} contains U+0000 or a lone surrogate, which the database cannot store`,
    };
  }
  return { ok: true, json: JSON.stringify(parsed.output) };
}

function short(text: string): string {
  return text.length <= 80 ? text : `${text.slice(0, 80)}…`;
}
