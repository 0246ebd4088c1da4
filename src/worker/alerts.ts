import * as v from "valibot";
import { AlertLine } from "../contracts/alert";
import type { Severity } from "../contracts/common";
import type { ExplicitAlert, SyntheticPayload } from "../contracts/task";

/**
 * The batch a task describes. Everything here is a pure function of the task
 * id, the org and the payload — never of the attempt — so every attempt of a
 * task writes the same lines and the sink's dedupe keys collapse them.
 */

const SEVERITIES: readonly Severity[] = ["info", "low", "medium", "high", "critical"];
/** Deterministic alerts are dated from here, one second apart. */
const EPOCH_MS = Date.UTC(2024, 0, 1);
/** The first dates, formatted once: every task's batch repeats them. */
const DATES = Array.from({ length: 100 }, (_, i) => dateOf(i));

function dateOf(index: number): string {
  return new Date(EPOCH_MS + index * 1000).toISOString();
}

export function dedupeKey(taskId: string, index: number): string {
  return `${taskId}:${index}`;
}

/** The index-th of a task's N deterministic alerts. */
export function generatedAlert(orgId: string, taskId: string, index: number): AlertLine {
  return {
    dedupe_key: dedupeKey(taskId, index),
    org_id: orgId,
    source: "harness.worker",
    severity: SEVERITIES[index % SEVERITIES.length] ?? "info",
    title: `Synthetic alert ${index} of task ${taskId}`,
    occurred_at: DATES[index] ?? dateOf(index),
    attributes: { task_id: taskId, index },
  };
}

function explicitLine(orgId: string, taskId: string, index: number, a: ExplicitAlert): AlertLine {
  return {
    dedupe_key: a.dedupe_key ?? dedupeKey(taskId, index),
    org_id: orgId,
    source: a.source,
    severity: a.severity,
    title: a.title,
    occurred_at: a.occurred_at,
    ...(a.attributes === undefined ? {} : { attributes: a.attributes }),
  };
}

/** The lines of a task's batch, each valid per the AlertLine contract. */
export function alertsFor(orgId: string, taskId: string, payload: SyntheticPayload): AlertLine[] {
  if (typeof payload.alerts === "number") {
    const lines = Array.from({ length: payload.alerts }, (_, i) =>
      generatedAlert(orgId, taskId, i),
    );
    // Generated lines all share one shape: checking the first is checking them all
    // (validating each costs more than generating it, test/worker/alerts.test.ts checks them all).
    if (lines[0] !== undefined) checkLine(taskId, 0, lines[0]);
    return lines;
  }
  const lines = payload.alerts.map((a, i) => explicitLine(orgId, taskId, i, a));
  for (const [i, line] of lines.entries()) checkLine(taskId, i, line);
  return lines;
}

function checkLine(taskId: string, index: number, line: AlertLine): void {
  const result = v.safeParse(AlertLine, line);
  if (!result.success) {
    throw new Error(
      `alert ${index} of task ${taskId} breaks the AlertLine contract: ${v.summarize(result.issues)}`,
    );
  }
}

/** JSONL: one JSON object per line, each line ending in "\n", UTF-8. */
export function toJsonl(lines: readonly AlertLine[]): Uint8Array {
  let text = "";
  for (const line of lines) text += `${JSON.stringify(line)}\n`;
  return new TextEncoder().encode(text);
}
