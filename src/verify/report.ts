import type { VerifyReport } from "./run";

/** The human-readable report of `harness verify`. */
export function formatReport(r: VerifyReport): string {
  const c = r.check;
  const lines = [
    `harness verify — org ${r.orgId}${r.seed === null ? "" : `, chaos seed ${r.seed}`}`,
    `tasks: ${c.tasks.total} total, ${c.tasks.succeeded} succeeded, ${c.tasks.failed} failed, ${c.tasks.running} running, ${c.tasks.queued} queued (max attempt ${c.attempts.max}, ${c.attempts.retried} retried)`,
    `rows: expected ${c.rows.expected}, found ${c.rows.found}, missing ${c.rows.missing}, unexpected ${c.rows.unexpected}, wrong org ${c.rows.wrongOrg}`,
    `stale outbox rows: ${c.outbox.staleRows}; pending outbox rows: ${c.outbox.pending}; dead letters: ${JSON.stringify(c.deadLetters)}`,
  ];
  if (r.schedule.length > 0) {
    lines.push(
      `injected: ${r.injected.kills} kill -9, ${r.injected.duplicateWakeups} duplicate wakeups, ${r.injected.duplicateBuffers} duplicate buffer messages`,
      `schedule: ${r.schedule.join("; ")}`,
    );
  }
  const restarted = Object.entries(r.restarts).filter(([, n]) => n > 0);
  if (restarted.length > 0)
    lines.push(
      `unexpected exits (restarted): ${restarted.map(([k, n]) => `${k}×${n}`).join(", ")}`,
    );
  lines.push(
    `time: ${(r.elapsedMs / 1000).toFixed(1)} s${r.timedOut ? " (timed out waiting for quiet)" : ""}`,
  );
  for (const inv of c.invariants)
    lines.push(`${inv.ok ? "PASS" : "FAIL"}  ${inv.name}: ${inv.detail}`);
  lines.push(c.ok && !r.timedOut ? "all invariants hold" : "INVARIANTS VIOLATED");
  return `${lines.join("\n")}\n`;
}
