import * as v from "valibot";
import { SyntheticPayload, TaskPayload } from "../contracts/task";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import type { Message } from "../queue/seam";
import { runClaimed } from "./attempt";
import type { ClaimEnvelope, Reply } from "./client";
import type { TaskResult, Wakeup, WorkerContext } from "./context";
import { execWork } from "./exec/work";
import { WORKER_LOG } from "./logs";
import { syntheticWork } from "./synthetic";

/**
 * One `task_wakeup` message, start to end: claim, then either work the
 * attempt (./attempt.ts) or act on the refusal. The worker touches its queue
 * only here and in ./attempt.ts, through the consumer in its context.
 */

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
  log[level](WORKER_LOG.task, {
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
  log.info(WORKER_LOG.claimed, { attempt: task.attempt, lease_expires_at: task.lease_expires_at });
  failpoint("worker.after_claim");
  if (ctx.exec !== undefined) {
    const payload = v.safeParse(TaskPayload, task.payload);
    if (!payload.success) {
      return failUnworkable(
        ctx,
        msg,
        task,
        `payload breaks the TaskPayload contract: ${oneLine(payload.issues)}`,
        abandon,
        log,
      );
    }
    const work = execWork(ctx.exec);
    return runClaimed(ctx, wakeup, { ...task, payload: payload.output }, abandon, log, work);
  }
  const payload = v.safeParse(SyntheticPayload, task.payload);
  if (!payload.success) {
    const reason = `the default worker needs {alerts, work_ms?} (a task for worker --exec?): payload breaks the SyntheticPayload contract: ${oneLine(payload.issues)}`;
    return failUnworkable(ctx, msg, task, reason, abandon, log);
  }
  return runClaimed(ctx, wakeup, { ...task, payload: payload.output }, abandon, log, syntheticWork);
}

const oneLine = (issues: Parameters<typeof v.summarize>[0]) =>
  v
    .summarize(issues)
    .replace(/\s*\n\s*/g, "; ")
    .slice(0, 2000);

/**
 * A claimed attempt this worker cannot work (its payload does not fit):
 * failed at once, not retryable — another attempt would fare no better — and
 * its wakeup acked.
 */
async function failUnworkable(
  ctx: WorkerContext,
  msg: Message<"task_wakeup">,
  task: ClaimEnvelope,
  reason: string,
  abandon: AbortSignal,
  log: Logger,
): Promise<TaskResult> {
  log.error(WORKER_LOG.attemptFailed, { attempt: task.attempt, reason, retryable: false });
  const r = await ctx.client.fail(task, { reason, retryable: false }, abandon);
  if (!r.ok) {
    const why = `fail refused: ${r.status} ${r.error}: ${r.message}`;
    log.warn("fail refused", { attempt: task.attempt, status: r.status, code: r.error });
    if (r.status === 409) return { outcome: "stale", attempt: task.attempt };
    await ctx.queue.recordError(msg, why);
    return { outcome: "refused", attempt: task.attempt };
  }
  await ctx.queue.ack(msg);
  return { outcome: "failed", attempt: task.attempt, reason };
}

async function onClaimRefused(
  ctx: WorkerContext,
  msg: Message<"task_wakeup">,
  refusal: Extract<Reply<ClaimEnvelope>, { ok: false }>,
  log: Logger,
): Promise<TaskResult> {
  if (refusal.status === 409 && refusal.error === "task_finished") {
    await ctx.queue.ack(msg);
    return { outcome: "finished" };
  }
  if (refusal.status === 409 && refusal.error === "lease_active") {
    // Someone holds the lease; look again once it could have expired.
    await ctx.queue.extendVisibility(msg, { visibilityTimeoutMs: ctx.leaseDurationMs });
    return { outcome: "lease_active" };
  }
  if (refusal.status === 409 && refusal.error === "retry_pending") {
    // A retryable failure's backoff is running (its own wakeup is hidden until then):
    // look again once it is over.
    const visibilityTimeoutMs = refusal.retryAfterMs ?? ctx.leaseDurationMs;
    await ctx.queue.extendVisibility(msg, { visibilityTimeoutMs });
    return { outcome: "retry_pending" };
  }
  if (refusal.status === 404) {
    log.warn("no such task, acking its wakeup", { code: refusal.error });
    await ctx.queue.ack(msg);
    return { outcome: "not_found" };
  }
  const reason = `claim refused: ${refusal.status} ${refusal.error}: ${refusal.message}`;
  log.error("claim refused", { status: refusal.status, code: refusal.error, reason });
  await ctx.queue.recordError(msg, reason);
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
    await ctx.queue.recordError(msg, reason.slice(0, 2000));
  } catch (cause) {
    log.warn("could not record the error on the wakeup", { err: cause });
  }
}
