import * as v from "valibot";
import { NDJSON } from "../contracts/common";
import { TaskPayload } from "../contracts/task";
import type { Sql } from "../db/connect";
import { failpoint } from "../failpoints";
import { type BatchRef, type BatchRules, batchRefusal } from "./batch";
import { outboxInsert } from "./sql/outbox";
import {
  type ClaimOutcome,
  type Fence,
  fenceCompleted,
  fenceHolds,
  leaseRenew,
  taskClaim,
  taskLockForFence,
  taskMarkFailed,
  taskMarkSucceeded,
  taskOrgOf,
} from "./sql/tasks";

/**
 * The dispatcher's domain operations on a task. Each takes one params object,
 * runs its fencing check and its effects in one transaction, and answers
 * with a result the HTTP layer maps to a status code.
 */

export type { ClaimOutcome, Fence };

export interface LeaseRules {
  leaseMs: number;
  maxAttempts: number;
}

export type ClaimResult =
  | Exclude<ClaimOutcome, { kind: "claimed" }>
  | (Extract<ClaimOutcome, { kind: "claimed" }> & { payload: TaskPayload })
  | { kind: "invalid_payload"; reason: string };

/**
 * Claims a task. A stored payload that breaks the task payload contract can
 * never be worked: the claimed attempt fails the task at once with the
 * reason, rather than every attempt failing until MAX_ATTEMPTS.
 */
export async function claimTask(
  sql: Sql,
  p: { taskId: string } & LeaseRules,
): Promise<ClaimResult> {
  try {
    const r = await taskClaim(sql, p);
    if (r.kind !== "claimed") return r;
    const parsed = v.safeParse(TaskPayload, r.payload);
    if (parsed.success) return { ...r, payload: parsed.output };
    const reason = `payload breaks the task payload contract: ${v.summarize(parsed.issues)}`;
    await taskMarkFailed(sql, {
      taskId: p.taskId,
      attempt: r.attempt,
      leaseToken: r.leaseToken,
      error: reason,
    });
    return { kind: "invalid_payload", reason };
  } catch (cause) {
    throw new Error(`claiming task ${p.taskId}`, { cause });
  }
}

/** A token for another org than the task's: refused with 403 (invariant 3), nothing changed. */
export type WrongOrg = { kind: "wrong_org" };

export type RenewResult = { kind: "renewed"; leaseExpiresAt: Date } | { kind: "stale" } | WrongOrg;

/** One statement: the fence is its WHERE clause. Only a refusal looks further, for its reason. */
export async function renewLease(sql: Sql, p: Fence & { leaseMs: number }): Promise<RenewResult> {
  try {
    const at = await leaseRenew(sql, p);
    if (at !== null) return { kind: "renewed", leaseExpiresAt: at };
    const org = await taskOrgOf(sql, p);
    return org !== null && org !== p.orgId ? { kind: "wrong_org" } : { kind: "stale" };
  } catch (cause) {
    throw new Error(`renewing the lease of task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
}

export type PublishResult =
  | { kind: "accepted" }
  | { kind: "stale" }
  | WrongOrg
  | { kind: "invalid"; message: string };

/**
 * Fences, checks the batch against the task row's org and id, and writes the
 * `buffer_queue` outbox row carrying the task row's org and id, never the body's.
 */
export async function publishBuffer(
  sql: Sql,
  p: Fence & BatchRef & { rules: BatchRules },
): Promise<PublishResult> {
  let result: PublishResult;
  try {
    result = await sql.begin(async (tx): Promise<PublishResult> => {
      const row = await taskLockForFence(tx, p);
      if (row !== null && row.org_id !== p.orgId) return { kind: "wrong_org" };
      if (row === null || !fenceHolds(row, p)) return { kind: "stale" };
      const refusal = batchRefusal(p, { orgId: row.org_id, taskId: p.taskId }, p.rules);
      if (refusal !== null) return { kind: "invalid", message: refusal };
      const payload = {
        task_id: p.taskId,
        org_id: row.org_id,
        attempt: row.attempt,
        batch_uri: p.batchUri,
        content_type: NDJSON,
        batch_size_bytes: p.batchSizeBytes,
      };
      await outboxInsert(tx, {
        rows: [{ queue: "buffer_queue", payload, taskId: p.taskId, attempt: row.attempt }],
        notify: false,
      });
      return { kind: "accepted" };
    });
  } catch (cause) {
    throw new Error(`publishing a batch of task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
  if (result.kind === "accepted") failpoint("dispatcher.after_outbox_commit");
  return result;
}

export type CompleteResult =
  | { kind: "completed"; repeated: boolean }
  | { kind: "stale" }
  | WrongOrg;

/**
 * Marks the task succeeded and writes one `task_completed` outbox row. A
 * repeat by the attempt and token that completed it answers the same and
 * writes nothing.
 */
export async function completeTask(sql: Sql, p: Fence): Promise<CompleteResult> {
  let result: CompleteResult;
  try {
    result = await sql.begin(async (tx): Promise<CompleteResult> => {
      const row = await taskLockForFence(tx, p);
      if (row === null) return { kind: "stale" };
      if (row.org_id !== p.orgId) return { kind: "wrong_org" };
      if (fenceCompleted(row, p)) return { kind: "completed", repeated: true };
      if (!fenceHolds(row, p)) return { kind: "stale" };
      const finishedAt = await taskMarkSucceeded(tx, p);
      const payload = {
        task_id: p.taskId,
        org_id: row.org_id,
        attempt: row.attempt,
        completed_at: finishedAt.toISOString(),
      };
      await outboxInsert(tx, {
        rows: [{ queue: "task_completed", payload, taskId: p.taskId, attempt: row.attempt }],
        notify: false,
      });
      return { kind: "completed", repeated: false };
    });
  } catch (cause) {
    throw new Error(`completing task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
  if (!(result.kind === "completed" && result.repeated === false)) return result;
  failpoint("dispatcher.after_outbox_commit");
  return result;
}
