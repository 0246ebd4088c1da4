import type { VerifyReport } from "./run";

/** The human-readable report of `harness verify`. */

function injectedLine(i: VerifyReport["injected"]): string {
  return `injected: ${i.kills} kill -9, ${i.duplicateWakeups} duplicate wakeups, ${i.duplicateBuffers} duplicate buffer messages, ${i.pauses} pauses, ${i.networkFaults} network faults, ${i.postgresRestarts} PostgreSQL restarts, ${i.brokerKills} broker node kills`;
}

function resourceLines(r: VerifyReport["resources"]): string[] {
  const fmt = (x: { pid: number; rssKb: number; fds: number } | null) =>
    x === null ? "gone" : `pid ${x.pid} ${(x.rssKb / 1024).toFixed(1)} MB RSS ${x.fds} fds`;
  return Object.entries(r).map(
    ([role, { start, end }]) => `  ${role}: ${fmt(start)} → ${fmt(end)}`,
  );
}

export function formatReport(r: VerifyReport): string {
  const c = r.check;
  const how = [
    r.seed === null ? "" : `, chaos seed ${r.seed} (${r.faults.join(",")})`,
    r.embedded ? ", embedded PostgreSQL" : "",
    r.durationMs === null ? "" : `, soak of ${Math.round(r.durationMs / 1000)} s`,
  ].join("");
  const lines = [
    `harness verify — org ${r.orgId}${how}`,
    `queues: ${r.queues}`,
    `work: ${r.exec === null ? "synthetic (the worker makes the alerts)" : `the task program ${r.exec.join(" ")}`}`,
    `tasks: ${c.tasks.total} total, ${c.tasks.succeeded} succeeded, ${c.tasks.failed} failed, ${c.tasks.running} running, ${c.tasks.queued} queued (max attempt ${c.attempts.max}, ${c.attempts.retried} retried)`,
    `rows: expected ${c.rows.expected}, found ${c.rows.found}, missing ${c.rows.missing}, unexpected ${c.rows.unexpected}, wrong org ${c.rows.wrongOrg}`,
    `stale outbox rows: ${c.outbox.staleRows}; stale lease renewals: ${c.fencing.staleRenewals} of ${c.fencing.renewalsSeen} seen; pending outbox rows: ${c.outbox.pending}; dead letters: ${JSON.stringify(c.deadLetters)}`,
  ];
  if (r.played.length > 0) {
    lines.push(injectedLine(r.injected), "schedule as played:");
    for (const p of r.played)
      lines.push(`  +${p.atMs}ms ${p.event.replace(/^\+\d+ms /, "")} — ${p.detail}`);
  }
  const restarted = Object.entries(r.restarts).filter(([, n]) => n > 0);
  if (restarted.length > 0)
    lines.push(`exits (restarted): ${restarted.map(([k, n]) => `${k}×${n}`).join(", ")}`);
  lines.push("resources (start → end):", ...resourceLines(r.resources));
  lines.push(
    `time: ${(r.elapsedMs / 1000).toFixed(1)} s${r.timedOut ? " (timed out waiting for quiet)" : ""}`,
  );
  for (const inv of c.invariants)
    lines.push(`${inv.ok ? "PASS" : "FAIL"}  ${inv.name}: ${inv.detail}`);
  lines.push(c.ok && !r.timedOut ? "all invariants hold" : "INVARIANTS VIOLATED");
  return `${lines.join("\n")}\n`;
}
