import * as v from "valibot";
import { SyntheticPayload } from "../contracts/task";
import type { Db } from "../db/connect";
import { dedupeKey } from "../worker/alerts";
import { auditAlerts, auditAttempts, auditMessages, auditOutbox, auditTasks } from "./audit";

/**
 * Checks the invariants of ../shared/DESIGN.md over the tasks of one org at
 * the end of a run, from the databases alone.
 */

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  tasks: { total: number; queued: number; running: number; succeeded: number; failed: number };
  rows: { expected: number; found: number; missing: number; unexpected: number; wrongOrg: number };
  attempts: { max: number; retried: number };
  outbox: { pending: number; staleRows: number };
  deadLetters: Record<string, number>;
  invariants: Invariant[];
}

/** The dedupe keys a task's payload describes: from the task and index, or the explicit key. */
export function expectedKeys(taskId: string, payload: unknown): string[] {
  const parsed = v.safeParse(SyntheticPayload, payload);
  if (!parsed.success) return [];
  const alerts = parsed.output.alerts;
  if (typeof alerts === "number")
    return Array.from({ length: alerts }, (_, i) => dedupeKey(taskId, i));
  return alerts.map((a, i) => a.dedupe_key ?? dedupeKey(taskId, i));
}

/** The outbox rows an attempt writes itself, through buffer-publish and complete. */
const ATTEMPT_WRITES: ReadonlySet<string> = new Set(["buffer_queue", "task_completed"]);

const sample = (items: readonly string[]) =>
  items.length === 0
    ? ""
    : ` (e.g. ${items.slice(0, 3).join(", ")}${items.length > 3 ? ", …" : ""})`;

export async function checkInvariants(
  state: Db,
  data: Db,
  p: { orgId: string; allowFailed?: boolean; poisonTaskIds?: readonly string[] },
): Promise<CheckReport> {
  const tasks = await auditTasks(state, { orgId: p.orgId });
  const ids = tasks.map((t) => t.id);
  const [alerts, outbox, attempts, messages] = await Promise.all([
    auditAlerts(data, { taskIds: ids, orgId: p.orgId }),
    auditOutbox(state, { taskIds: ids }),
    auditAttempts(state, { taskIds: ids }),
    auditMessages(state, { taskIds: ids }),
  ]);
  const poison = new Set(p.poisonTaskIds ?? []);
  const count = (s: string) => tasks.filter((t) => t.status === s).length;

  // Succeeded tasks must have every row; a failed task may have published before it failed.
  // A row is keyed by (org_id, dedupe_key): the same key may be stored once per org.
  const rowKey = (orgId: string, key: string) => `${orgId}/${key}`;
  const expected = new Set<string>();
  const allowed = new Set<string>();
  const allowedKeys = new Set<string>();
  for (const t of tasks) {
    if (poison.has(t.id) || (t.status !== "succeeded" && t.status !== "failed")) continue;
    for (const key of expectedKeys(t.id, t.payload)) {
      allowed.add(rowKey(t.org_id, key));
      allowedKeys.add(key);
      if (t.status === "succeeded") expected.add(rowKey(t.org_id, key));
    }
  }
  const found = new Set(alerts.map((a) => rowKey(a.org_id, a.dedupe_key)));
  const missing = [...expected].filter((k) => !found.has(k));
  const stray = alerts.filter((a) => !allowed.has(rowKey(a.org_id, a.dedupe_key)));
  const unexpected = stray
    .filter((a) => !allowedKeys.has(a.dedupe_key))
    .map((a) => rowKey(a.org_id, a.dedupe_key));
  const wrongOrg = stray.filter((a) => allowedKeys.has(a.dedupe_key));

  // A row written by attempt a after attempt a+1 was claimed came from a fenced attempt.
  // Only an attempt's own writes count: the reaper's wakeup names the attempt whose
  // lease expired, and may commit after a claim whose clock started before it.
  const claimedAt = new Map(
    attempts.map((a) => [`${a.task_id}:${a.attempt}`, a.claimed_at.getTime()]),
  );
  const stale = outbox.filter((o) => {
    if (o.task_id === null || o.attempt === null || !ATTEMPT_WRITES.has(o.queue_name)) return false;
    const next = claimedAt.get(`${o.task_id}:${o.attempt + 1}`);
    return next !== undefined && o.created_at.getTime() >= next;
  });
  const pending = outbox.filter((o) => o.status === "pending").length;
  const rejected = outbox.filter((o) => o.status === "rejected");
  const deadLetters: Record<string, number> = {};
  for (const m of messages) {
    if (m.queue_name.endsWith(".dlq"))
      deadLetters[m.queue_name] = (deadLetters[m.queue_name] ?? 0) + 1;
  }
  const liveMessages = messages.filter(
    (m) => !m.queue_name.endsWith(".dlq") && m.queue_name !== "task_completed",
  );
  const finished = count("succeeded") + count("failed");
  const unexpectedDead = Object.entries(deadLetters)
    .filter(([q]) => q !== "buffer_queue.dlq" || poison.size === 0)
    .reduce((n, [, c]) => n + c, 0);

  const invariants: Invariant[] = [
    {
      name: "every task finished (no task stuck)",
      ok: finished === tasks.length && (p.allowFailed === true || count("failed") === 0),
      detail: `${count("succeeded")} succeeded, ${count("failed")} failed, ${count("running")} running, ${count("queued")} queued of ${tasks.length}`,
    },
    {
      name: "exactly the expected rows, each once, with the task's org",
      ok: missing.length === 0 && unexpected.length === 0 && wrongOrg.length === 0,
      detail: `expected ${expected.size}, found ${found.size}; missing ${missing.length}${sample(missing)}; unexpected ${unexpected.length}${sample(unexpected)}; wrong org ${wrongOrg.length}`,
    },
    {
      name: "no stale attempt wrote an outbox row after it was fenced",
      ok: stale.length === 0,
      detail: `${stale.length} stale row(s)${sample(stale.map((s) => `${s.task_id}#${s.attempt}`))}`,
    },
    {
      name: "the outbox drained and the queues are empty",
      ok: pending === 0 && liveMessages.length === 0,
      detail: `${pending} pending outbox row(s), ${liveMessages.length} live message(s)`,
    },
    {
      name: "no outbox row of the run's tasks was rejected",
      ok: rejected.length === 0,
      detail: `${rejected.length} rejected row(s)${sample(rejected.map((o) => `${o.id} (${o.queue_name}, task ${o.task_id})`))}`,
    },
    {
      name: "no dead letters except the injected poison",
      ok: unexpectedDead === 0,
      detail: JSON.stringify(deadLetters),
    },
  ];
  return {
    ok: invariants.every((i) => i.ok),
    tasks: {
      total: tasks.length,
      queued: count("queued"),
      running: count("running"),
      succeeded: count("succeeded"),
      failed: count("failed"),
    },
    rows: {
      expected: expected.size,
      found: found.size,
      missing: missing.length,
      unexpected: unexpected.length,
      wrongOrg: wrongOrg.length,
    },
    attempts: {
      max: Math.max(0, ...tasks.map((t) => t.attempt)),
      retried: tasks.filter((t) => t.attempt > 1).length,
    },
    outbox: { pending, staleRows: stale.length },
    deadLetters,
    invariants,
  };
}
