import * as v from "valibot";
import { NDJSON } from "../contracts/common";
import type { BufferMessage } from "../contracts/queue";
import { TaskPayload } from "../contracts/task";
import type { Sql } from "../db/connect";
import { failpoint, failswitch } from "../failpoints";
import { type BatchRef, type BatchRules, batchRefusal } from "./batch";
import type { Claimer } from "./claims";
import type { Completer } from "./completes";
import type { BatchPublisher } from "./publishes";
import type { Renewer } from "./renewals";
import { type ClaimOutcome, taskClaim } from "./sql/claim";
import { taskComplete } from "./sql/complete";
import { classifyFence, type Fence, type FenceRow, taskFenceRead } from "./sql/fence";
import { leaseRenew, leaseRenewUnfenced, taskFail, taskPublishBatch } from "./sql/tasks";

/**
 * The dispatcher's domain operations on a task. Each takes one params object,
 * runs one fenced statement (./sql/tasks.ts), and answers with a result the
 * HTTP layer maps to a status code. A refusal is classified once, the same
 * way for every endpoint (./sql/fence.ts).
 */

export type { ClaimOutcome, Fence };

export interface LeaseRules {
  leaseMs: number;
  maxAttempts: number;
  /** A retryable failure's wakeup waits base · 2^(attempt − 1), at most max (ms). */
  retryBackoff?: { baseMs: number; maxMs: number };
}

export const DEFAULT_RETRY_BACKOFF = { baseMs: 1_000, maxMs: 300_000 };

/** How long a retryable failure of `attempt` waits before its wakeup: exponential, capped. */
export function retryBackoffMs(attempt: number, b = DEFAULT_RETRY_BACKOFF): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/** A refusal every fenced call may get: another attempt or lease (409), another org's token (403). */
export type Refused = { kind: "stale" } | { kind: "wrong_org" };

/** A refusal of a call other than complete, where a repeated complete counts as stale. */
const refusalFrom = (row: FenceRow | null): Refused =>
  classifyFence(row) === "wrong_org" ? { kind: "wrong_org" } : { kind: "stale" };

/** Why a fenced statement changed nothing. */
async function refusalOf(sql: Sql, f: Fence): Promise<Refused> {
  return refusalFrom(await taskFenceRead(sql, f));
}

export type ClaimResult =
  | Exclude<ClaimOutcome, { kind: "claimed" }>
  | (Extract<ClaimOutcome, { kind: "claimed" }> & { payload: TaskPayload })
  | { kind: "invalid_payload"; reason: string };

/**
 * Claims a task. A stored payload that breaks the task payload contract can
 * never be worked: the claimed attempt fails the task at once, through the
 * same fenced fail as `POST /v1/task/fail`, rather than every attempt failing
 * until MAX_ATTEMPTS. With a `claimer` (./claims.ts) the claim's statement
 * may carry concurrent claims of other tasks too.
 */
export async function claimTask(
  sql: Sql,
  p: { taskId: string } & LeaseRules,
  claimer?: Claimer,
): Promise<ClaimResult> {
  try {
    const r = await (claimer === undefined ? taskClaim(sql, p) : claimer(p.taskId));
    if (r.kind !== "claimed") return r;
    const parsed = v.safeParse(TaskPayload, r.payload);
    if (parsed.success) return { ...r, payload: parsed.output };
    const reason = `payload breaks the task payload contract: ${v.summarize(parsed.issues)}`;
    const fence = {
      taskId: p.taskId,
      attempt: r.attempt,
      leaseToken: r.leaseToken,
      orgId: r.orgId,
    };
    await failTask(sql, { ...fence, reason, retryable: false, rules: p });
    return { kind: "invalid_payload", reason };
  } catch (cause) {
    throw new Error(`claiming task ${p.taskId}`, { cause });
  }
}

export type RenewResult = { kind: "renewed"; leaseExpiresAt: Date } | Refused;

/**
 * Renews the lease `p` holds. A `renewer` (./renewals.ts, made for this
 * dispatcher's one lease length) may carry concurrent heartbeats of other
 * tasks in the same statement.
 */
export async function renewLease(
  sql: Sql,
  p: Fence & { leaseMs: number },
  renewer?: Renewer,
): Promise<RenewResult> {
  try {
    const at = await (failswitch("dispatcher.unfenced_heartbeat")
      ? leaseRenewUnfenced(sql, p)
      : renewer === undefined
        ? leaseRenew(sql, p)
        : renewer(p));
    if (at !== null) return { kind: "renewed", leaseExpiresAt: at };
    return await refusalOf(sql, p);
  } catch (cause) {
    throw new Error(`renewing the lease of task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
}

/** Why a batch the fence would let through is refused (422). */
export type BatchRefused =
  | { kind: "invalid"; message: string }
  | { kind: "too_many_batches"; max: number };

export type PublishResult = { kind: "accepted"; repeat: boolean } | Refused | BatchRefused;

/** The `buffer_queue` message of a batch: org and task from the fence the task row is compared with. */
const bufferMessage = (f: Fence, ref: BatchRef): BufferMessage => ({
  task_id: f.taskId,
  org_id: f.orgId,
  attempt: f.attempt,
  batch_uri: ref.batchUri,
  content_type: NDJSON,
  batch_size_bytes: ref.batchSizeBytes,
});

/**
 * Checks the batch against the task's org and id, then writes its
 * `buffer_queue` outbox row carrying the org the fence compared with the
 * task row, never the body's. A refused batch is still fenced first: a stale
 * attempt gets 409 whatever it sends. With a `publisher` (./publishes.ts) the
 * statement may carry concurrent publishes of other tasks too.
 */
export async function publishBuffer(
  sql: Sql,
  p: Fence & BatchRef & { rules: BatchRules },
  publisher?: BatchPublisher,
): Promise<PublishResult> {
  let result: PublishResult;
  try {
    const invalid = batchRefusal(p, { orgId: p.orgId, taskId: p.taskId }, p.rules);
    if (invalid !== null) {
      const row = await taskFenceRead(sql, p);
      return row?.holds === true ? { kind: "invalid", message: invalid } : refusalFrom(row);
    }
    const message = bufferMessage(p, p);
    const maxBatches = p.rules.maxBatchesPerAttempt;
    const call = { ...p, message, maxBatches };
    const r = await (publisher === undefined ? taskPublishBatch(sql, call) : publisher(call));
    if (!r.held) return await refusalOf(sql, p);
    if (!r.accepted) return { kind: "too_many_batches", max: maxBatches };
    result = { kind: "accepted", repeat: !r.inserted };
  } catch (cause) {
    throw new Error(`publishing a batch of task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
  if (!result.repeat) failpoint("dispatcher.after_outbox_commit");
  return result;
}

export type CompleteResult =
  | { kind: "completed"; repeated: boolean }
  | Refused
  | BatchRefused
  | { kind: "unpublished" };

/**
 * Marks the task succeeded and writes one `task_completed` outbox row. With
 * a batch, the same statement first publishes it as `publishBuffer` would
 * (checked the same way first; fenced before a 422). A repeat by the
 * attempt and token that completed it answers the same and writes nothing,
 * unless it carries a batch that attempt never published (`unpublished`).
 * With a `completer` (./completes.ts) the statement may carry concurrent
 * completes of other tasks too.
 */
export async function completeTask(
  sql: Sql,
  p: Fence & { batch?: BatchRef; rules: BatchRules },
  completer?: Completer,
): Promise<CompleteResult> {
  const { batch, rules, ...f } = p;
  const maxBatches = rules.maxBatchesPerAttempt;
  try {
    const invalid = batch === undefined ? null : batchRefusal(batch, f, rules);
    if (invalid !== null)
      return await completeRefusal(sql, p, { kind: "invalid", message: invalid });
    const call = {
      ...f,
      maxBatches,
      ...(batch === undefined ? {} : { message: bufferMessage(f, batch) }),
    };
    if (!(await (completer === undefined ? taskComplete(sql, call) : completer(call)))) {
      // Only the cap keeps a complete whose fence holds from completing.
      const capped: CompleteResult =
        batch === undefined ? { kind: "stale" } : { kind: "too_many_batches", max: maxBatches };
      return await completeRefusal(sql, p, capped);
    }
  } catch (cause) {
    throw new Error(`completing task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
  failpoint("dispatcher.after_outbox_commit");
  return { kind: "completed", repeated: false };
}

/** Why a complete changed nothing: `held` if the fence holds, else as the fence read says. */
async function completeRefusal(
  sql: Sql,
  p: Fence & { batch?: BatchRef },
  held: CompleteResult,
): Promise<CompleteResult> {
  const row = await taskFenceRead(sql, p, p.batch?.batchUri);
  if (row?.holds === true) return held;
  const why = classifyFence(row);
  return why === "completed" ? { kind: "completed", repeated: true } : { kind: why };
}

export type FailResult = { kind: "requeued"; retryAt: Date } | { kind: "failed" } | Refused;

/**
 * Ends the attempt `failed` with its reason. Retryable and below
 * `maxAttempts`: the task goes back to `queued`, woken after a backoff
 * (the outbox row's `available_at`, by the database clock); otherwise it
 * ends `failed` with the reason as `last_error`.
 */
export async function failTask(
  sql: Sql,
  p: Fence & { reason: string; retryable: boolean; rules: LeaseRules },
): Promise<FailResult> {
  const retry = p.retryable && p.attempt < p.rules.maxAttempts;
  const retryAfterMs = retry ? retryBackoffMs(p.attempt, p.rules.retryBackoff) : null;
  let result: FailResult;
  try {
    const r = await taskFail(sql, { ...p, retryAfterMs });
    if (r === null) return await refusalOf(sql, p);
    if (!retry) result = { kind: "failed" };
    else if (r.retryAt === null) throw new Error("the retry's wakeup was not written");
    else result = { kind: "requeued", retryAt: r.retryAt };
  } catch (cause) {
    throw new Error(`failing task ${p.taskId} attempt ${p.attempt}`, { cause });
  }
  if (result.kind === "requeued") failpoint("dispatcher.after_outbox_commit");
  return result;
}
