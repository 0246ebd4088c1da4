import * as v from "valibot";
import { TaskPayload } from "../contracts/task";
import type { Db } from "../db/connect";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import type { ObjectStore } from "../objectstore/index";
import type { Message } from "../queue/index";
import { ack, deadLetter, extendVisibility, recordError } from "../queue/index";
import { runClaimed } from "./attempt";
import type { ClaimEnvelope, DispatcherClient, Reply } from "./client";

/**
 * One `task_wakeup` message, start to end: claim, then either work the
 * attempt (./attempt.ts) or act on the refusal. The worker touches the state
 * database only here and in ./attempt.ts, and only through the queue adapter.
 */

export interface WorkerContext {
  db: Db;
  store: ObjectStore;
  client: DispatcherClient;
  leaseDurationMs: number;
  log: Logger;
}

/** A received wakeup and the earliest time (epoch ms) its visibility timeout could end. */
export interface Wakeup {
  msg: Message<"task_wakeup">;
  hiddenUntil: number;
}

export type Outcome =
  | "succeeded" // published and completed, wakeup acked
  | "finished" // the task was already done: wakeup acked
  | "lease_active" // another worker holds the lease: wakeup left for later
  | "not_found" // no such task: wakeup acked
  | "stale" // fenced out mid-task: nothing more published, wakeup left
  | "dead_lettered" // the payload breaks its contract
  | "refused" // another refusal (auth, validation): wakeup left with the reason
  | "abandoned" // stopped before the end: wakeup left to reappear
  | "error"; // an unexpected failure: wakeup left with the reason

export interface TaskResult {
  outcome: Outcome;
  attempt?: number;
  alerts?: number;
  bytes?: number;
}

export async function handleWakeup(
  ctx: WorkerContext,
  wakeup: Wakeup,
  abandon: AbortSignal,
): Promise<TaskResult> {
  const msg = wakeup.msg;
  const started = performance.now();
  const log = ctx.log.child({ task_id: msg.payload.task_id, message_id: msg.id });
  let result: TaskResult;
  try {
    result = await claimAndRun(ctx, wakeup, abandon, log);
  } catch (err) {
    if (abandon.aborted) result = { outcome: "abandoned" };
    else {
      log.error("task failed unexpectedly", { err, receive_count: msg.receiveCount });
      await noteError(ctx, msg, err, log);
      result = { outcome: "error" };
    }
  }
  const ms = Math.round(performance.now() - started);
  const level = result.outcome === "error" || result.outcome === "refused" ? "warn" : "info";
  log[level]("task", {
    attempt: result.attempt,
    outcome: result.outcome,
    ms,
    alerts: result.alerts,
  });
  return result;
}

async function claimAndRun(
  ctx: WorkerContext,
  wakeup: Wakeup,
  abandon: AbortSignal,
  log: Logger,
): Promise<TaskResult> {
  const msg = wakeup.msg;
  const claim = await ctx.client.claim(msg.payload.task_id, abandon);
  if (!claim.ok) return onClaimRefused(ctx, msg, claim, log);
  const task = claim.body;
  const payload = v.safeParse(TaskPayload, task.payload);
  if (!payload.success) {
    const reason = `task ${task.task_id} attempt ${task.attempt}: payload breaks the TaskPayload contract: ${v.summarize(payload.issues)}`;
    log.error("invalid task payload, dead-lettering the wakeup", { attempt: task.attempt, reason });
    await deadLetter(ctx.db, "task_wakeup", msg.id, reason);
    return { outcome: "dead_lettered", attempt: task.attempt };
  }
  log.info("claimed", { attempt: task.attempt, lease_expires_at: task.lease_expires_at });
  failpoint("worker.after_claim");
  return runClaimed(ctx, wakeup, { ...task, payload: payload.output }, abandon, log);
}

async function onClaimRefused(
  ctx: WorkerContext,
  msg: Message<"task_wakeup">,
  refusal: Extract<Reply<ClaimEnvelope>, { ok: false }>,
  log: Logger,
): Promise<TaskResult> {
  if (refusal.status === 409 && refusal.error === "task_finished") {
    await ack(ctx.db, msg.id);
    return { outcome: "finished" };
  }
  if (refusal.status === 409 && refusal.error === "lease_active") {
    // Someone holds the lease; look again once it could have expired.
    await extendVisibility(ctx.db, msg.id, { visibilityTimeoutMs: ctx.leaseDurationMs });
    return { outcome: "lease_active" };
  }
  if (refusal.status === 404) {
    log.warn("no such task, acking its wakeup", { code: refusal.error });
    await ack(ctx.db, msg.id);
    return { outcome: "not_found" };
  }
  const reason = `claim refused: ${refusal.status} ${refusal.error}: ${refusal.message}`;
  log.error("claim refused", { status: refusal.status, code: refusal.error, reason });
  await recordError(ctx.db, msg.id, reason);
  return { outcome: "refused" };
}

async function noteError(
  ctx: WorkerContext,
  msg: Message<"task_wakeup">,
  err: unknown,
  log: Logger,
) {
  const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  try {
    await recordError(ctx.db, msg.id, reason.slice(0, 2000));
  } catch (cause) {
    log.warn("could not record the error on the wakeup", { err: cause });
  }
}
