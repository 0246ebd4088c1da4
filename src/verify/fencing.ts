import type { AuditAttempt, AuditOutbox, AuditTask } from "../reads/audit";
import type { LeaseGrant } from "./http-tap";

/**
 * Invariant 2 from the databases, whatever the fault was: no attempt changed
 * anything after it was fenced out.
 *
 * An attempt's own changes are the outbox rows of its buffer-publish,
 * complete and fail (a retryable fail's wakeup: the row its fail statement
 * wrote, stamped with the same now() as the attempt's `ended_at`), its own
 * ending (`task_attempts.outcome` completed or failed, at `ended_at`), and —
 * when verify watched the worker's link to the dispatcher — each lease
 * renewal the dispatcher granted it. Attempt a is fenced out:
 *
 * - once attempt a + 1 was claimed. A fenced write checks the lease against
 *   its transaction's now(), and the claim needs that lease expired by its
 *   own now(): a write by a that held its fence has `created_at` before the
 *   claim's `claimed_at`, always. A renewal at database time t grants
 *   t + lease (the answer's `lease_expires_at`), so t is known exactly too;
 * - once the task was completed. Timestamps cannot order that (a
 *   transaction's now() is when it began, not when it took the task's lock),
 *   but the outbox ids can: complete writes its row holding the task's lock,
 *   so any own write of the task with a later id came after it.
 *
 * The reaper's `task_wakeup` rows name the attempt whose lease expired and
 * may commit after the next claim began: they are not the attempt's writes,
 * nor is an ending the next claim (`fenced`) or exhaustion (`expired`) wrote.
 * Every time is the database clock's, in µs.
 */

/** The outbox rows an attempt writes itself, through buffer-publish and complete. */
const ATTEMPT_WRITES: ReadonlySet<string> = new Set(["buffer_queue", "task_completed"]);

/** Endings an attempt's own call writes (the others are written by a claim). */
const OWN_ENDINGS: ReadonlySet<string> = new Set(["completed", "failed"]);

export interface FencingFindings {
  /** Own writes after the attempt was fenced out, or by an attempt never claimed. */
  staleWrites: string[];
  /** Lease renewals granted to an attempt after the next attempt was claimed. */
  staleRenewals: string[];
  /** Renewals seen granted (heartbeats; claims are not renewals). */
  renewalsSeen: number;
  /** Tasks not completed exactly once by their last attempt (or completed though unfinished). */
  badCompletions: string[];
}

export interface FencingInput {
  tasks: readonly AuditTask[];
  attempts: readonly AuditAttempt[];
  outbox: readonly AuditOutbox[];
  /** Leases verify saw granted, and the lease length they were granted for. */
  observed?: { grants: readonly LeaseGrant[]; leaseMs: number };
}

/** Stale at database time `us`: an attempt never claimed, or the next attempt claimed by then. */
type StaleAt = (taskId: string, attempt: number, us: number) => boolean;

function staleAtOf(attempts: readonly AuditAttempt[]): StaleAt {
  const claimed = new Map(attempts.map((a) => [`${a.task_id}:${a.attempt}`, a.claimed_us]));
  return (taskId, attempt, us) => {
    const next = claimed.get(`${taskId}:${attempt + 1}`);
    return !claimed.has(`${taskId}:${attempt}`) || (next !== undefined && us >= next);
  };
}

/** Endings an attempt wrote itself after it was fenced out. */
function staleEndings(input: FencingInput, staleAt: StaleAt): string[] {
  return input.attempts
    .filter((a) => a.ended_us !== null && a.outcome !== null && OWN_ENDINGS.has(a.outcome))
    .filter((a) => staleAt(a.task_id, a.attempt, a.ended_us ?? 0))
    .map((a) => `${a.task_id}#${a.attempt} ${a.outcome}`);
}

/** Outbox rows an attempt wrote itself after it was fenced out, or after the task was completed. */
function staleRows(input: FencingInput, staleAt: StaleAt): string[] {
  const completedId = new Map<string, bigint>();
  for (const o of input.outbox)
    if (o.queue_name === "task_completed" && o.task_id !== null)
      completedId.set(o.task_id, minId(completedId.get(o.task_id), BigInt(o.id)));
  const failed = new Set(
    input.attempts
      .filter((a) => a.outcome === "failed")
      .map((a) => `${a.task_id}:${a.attempt}:${a.ended_us}`),
  );
  const own = (o: AuditOutbox) =>
    ATTEMPT_WRITES.has(o.queue_name) ||
    (o.queue_name === "task_wakeup" && failed.has(`${o.task_id}:${o.attempt}:${o.created_us}`));
  const stale: string[] = [];
  for (const o of input.outbox) {
    if (o.task_id === null || o.attempt === null || !own(o)) continue;
    const done = completedId.get(o.task_id);
    const afterCompletion = done !== undefined && BigInt(o.id) > done;
    if (afterCompletion || staleAt(o.task_id, o.attempt, o.created_us))
      stale.push(`${o.task_id}#${o.attempt} ${o.queue_name}`);
  }
  return stale;
}

export function checkFencing(input: FencingInput): FencingFindings {
  const staleAt = staleAtOf(input.attempts);
  // Only this run's tasks: its roles may also work on tasks an earlier run left behind.
  const ours = new Set(input.tasks.map((t) => t.id));
  const renewals = (input.observed?.grants ?? []).filter(
    (g) => g.kind === "heartbeat" && ours.has(g.taskId),
  );
  const leaseUs = (input.observed?.leaseMs ?? 0) * 1000;
  const staleRenewals = renewals
    .filter((g) => staleAt(g.taskId, g.attempt, g.leaseExpiresAt.getTime() * 1000 - leaseUs))
    .map((g) => `${g.taskId}#${g.attempt} heartbeat`);
  return {
    staleWrites: [...staleEndings(input, staleAt), ...staleRows(input, staleAt)],
    staleRenewals,
    renewalsSeen: renewals.length,
    badCompletions: completionFindings(input),
  };
}

const minId = (a: bigint | undefined, b: bigint) => (a === undefined || b < a ? b : a);

/** Every succeeded task has one task_completed row, by its last attempt; no other task has one. */
function completionFindings(input: FencingInput): string[] {
  const completions = new Map<string, number[]>();
  for (const o of input.outbox) {
    if (o.queue_name !== "task_completed" || o.task_id === null) continue;
    completions.set(o.task_id, [...(completions.get(o.task_id) ?? []), o.attempt ?? -1]);
  }
  const bad: string[] = [];
  for (const t of input.tasks) {
    const by = completions.get(t.id) ?? [];
    const ok = t.status === "succeeded" ? by.length === 1 && by[0] === t.attempt : by.length === 0;
    if (!ok) bad.push(`${t.id} ${t.status} completed by [${by.join(", ")}]`);
  }
  return bad;
}
