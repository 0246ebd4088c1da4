import type { TaskRow } from "../reads/tasks";
import type { AttemptRow, BatchRow, OutboxRow } from "../reads/timeline";
import { type AttemptView, OUTCOMES, type Outcome, type TimelineEvent } from "./contract";

/**
 * A task's attempts as a timeline: each claim, the lease, what the attempt
 * published, and how it ended.
 *
 * How an attempt ended is what `state.task_attempts` records (`outcome`,
 * `ended_at`, `reason`: the claim that takes over ends the old attempt
 * `fenced`, complete and fail end theirs). Where nothing is recorded — the
 * attempt still runs, or it ended before the dispatcher recorded outcomes —
 * it is derived:
 * - an attempt followed by a later claim was **fenced out**: a claim takes a
 *   running task over only once its lease expired, so from the next claim on
 *   every call of the old attempt is refused (409) — it ended at that claim;
 * - the current attempt of a `succeeded` task **completed** at `finished_at`,
 *   of a `failed` one **failed** with the task's `last_error`;
 * - the current attempt of a `running` task is **running** while its lease
 *   is live, **expired** once it is over (and no one has claimed it yet).
 * Heartbeats are not recorded: the last one is known only for a running
 * attempt (a heartbeat sets `updated_at` with the lease).
 */

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
const at = (d: Date): string => d.toISOString();

function recordedOutcome(row: AttemptRow): Outcome | null {
  const found = OUTCOMES.find((o) => o === row.outcome);
  return found ?? null;
}

interface Derived {
  outcome: Outcome;
  endedAt: Date | null;
  reason: string | null;
}

function derive(task: TaskRow, row: AttemptRow, next: AttemptRow | undefined): Derived {
  if (next !== undefined) {
    // A claim takes a running task over only once its lease expired.
    return {
      outcome: "fenced",
      endedAt: next.claimed_at,
      reason: `its lease expired and attempt ${next.attempt} was claimed; every later call of this attempt is refused`,
    };
  }
  if (row.attempt !== task.attempt) return { outcome: "unknown", endedAt: null, reason: null };
  switch (task.status) {
    case "succeeded":
      return { outcome: "completed", endedAt: task.finished_at, reason: null };
    case "failed":
      return { outcome: "failed", endedAt: task.finished_at, reason: task.last_error };
    case "running":
      return task.lease_expired
        ? {
            outcome: "expired",
            endedAt: task.lease_expires_at,
            reason: "lease expired; waiting for a new claim",
          }
        : { outcome: "running", endedAt: null, reason: null };
    default:
      return { outcome: "unknown", endedAt: null, reason: null };
  }
}

function events(
  task: TaskRow,
  row: AttemptRow,
  d: Derived,
  mine: { outbox: OutboxRow[]; batches: BatchRow[] },
): TimelineEvent[] {
  const list: TimelineEvent[] = [
    {
      at: at(row.claimed_at),
      kind: "claim",
      text: `claimed, lease ${row.lease_token.slice(0, 8)}`,
    },
  ];
  const current = row.attempt === task.attempt && task.status === "running";
  if (current && task.updated_at > row.claimed_at) {
    list.push({
      at: at(task.updated_at),
      kind: "heartbeat",
      text: "last lease renewal (heartbeat)",
    });
  }
  for (const o of mine.outbox) {
    // A batch's row comes from a buffer-publish or from a complete that carried it.
    const state = o.status === "sent" ? "published" : o.status;
    const name = o.batch_uri?.slice(o.batch_uri.lastIndexOf("/") + 1) ?? "";
    const text =
      o.queue_name === "task_wakeup"
        ? "lease expiry seen by the reaper: task woken again"
        : o.queue_name === "buffer_queue"
          ? `batch ${name} handed to the sink (outbox row ${o.id}, ${state})`
          : `complete: ${o.queue_name} message (outbox row ${o.id}, ${state})`;
    list.push({
      at: at(o.created_at),
      kind: o.queue_name === "task_wakeup" ? "wakeup" : "publish",
      text,
    });
  }
  for (const b of mine.batches) {
    list.push({
      at: at(b.committed_at),
      kind: "ingest",
      text: `sink ingested ${b.rows_inserted} row(s), skipped ${b.rows_skipped} duplicate(s)`,
    });
  }
  if (d.outcome !== "running") {
    list.push({
      at: iso(d.endedAt),
      kind: "end",
      text: d.reason ? `${d.outcome}: ${d.reason}` : d.outcome,
    });
  }
  return list.sort((a, b) => (a.at ?? "\uffff").localeCompare(b.at ?? "\uffff"));
}

/** The attempts of `task`, oldest first, with what each wrote and how it ended. */
export function attemptTimeline(
  task: TaskRow,
  attempts: AttemptRow[],
  outbox: OutboxRow[],
  batches: BatchRow[],
): AttemptView[] {
  return attempts.map((row, i) => {
    const next = attempts[i + 1];
    const recorded = recordedOutcome(row);
    const d: Derived =
      recorded === null
        ? derive(task, row, next)
        : { outcome: recorded, endedAt: row.ended_at ?? null, reason: row.reason ?? null };
    const mineOutbox = outbox.filter((o) => o.attempt === row.attempt);
    const mineBatches = batches.filter((b) => b.attempt === row.attempt);
    const written = mineOutbox.filter((o) => o.queue_name !== "task_wakeup");
    const afterFence =
      next === undefined ? null : written.filter((o) => o.created_at >= next.claimed_at).length;
    return {
      attempt: row.attempt,
      lease_token: row.lease_token,
      claimed_at: at(row.claimed_at),
      ended_at: iso(d.endedAt),
      outcome: d.outcome,
      outcome_source: recorded === null ? "derived" : "recorded",
      reason: d.reason,
      lease_expires_at: row.attempt === task.attempt ? iso(task.lease_expires_at) : null,
      batches_published: written.filter((o) => o.queue_name === "buffer_queue").length,
      rows_ingested: mineBatches.reduce((sum, b) => sum + b.rows_inserted, 0),
      writes_after_fence: afterFence,
      events: events(task, row, d, { outbox: mineOutbox, batches: mineBatches }),
    };
  });
}
