import { randomUUID } from "node:crypto";
import type { Logger } from "../log";
import type { Message } from "../queue/seam";
import type { ClaimEnvelope, LeaseIdentity, Reply } from "./client";
import type { TaskResult, Wakeup, WorkerContext } from "./context";
import { type Heartbeat, startHeartbeat } from "./heartbeat";
import { WORKER_LOG } from "./logs";

/**
 * One claimed attempt, whatever does its work (./synthetic.ts, or a task
 * program: ./exec/work.ts): heartbeat meanwhile, ack the wakeup once the
 * attempt completed or failed for the dispatcher. Once the dispatcher refuses
 * this attempt's lease, the attempt stops where it is and publishes nothing
 * more; its wakeup is left for whoever holds the lease.
 */

export type Claimed<P> = Omit<ClaimEnvelope, "payload"> & { payload: P };
export type Refusal = Extract<Reply<unknown>, { ok: false }>;

/** What works a claimed attempt: its result ("succeeded" once completed, "failed" once failed). */
export type Work<P> = (a: Attempt<P>, signal: AbortSignal) => Promise<TaskResult>;

/** Where an attempt's batch goes: `<org_id>/<task_id>/<attempt>-<unique>.jsonl`. */
export function batchKey(task: { org_id: string; task_id: string; attempt: number }): string {
  return `${task.org_id}/${task.task_id}/${task.attempt}-${randomUUID()}.jsonl`;
}

/** Heartbeats come this often: a third of the lease. */
export function heartbeatInterval(leaseDurationMs: number): number {
  return Math.max(50, Math.floor(leaseDurationMs / 3));
}

/**
 * Right after the claim, the wakeup's receive already hides it until about
 * when the new lease ends: a lease starts a few ms after the receive. Moving
 * the wakeup by less than this (a tenth of the lease, at most 2 s) is not
 * worth a statement per task: if the attempt dies, the wakeup reappears at
 * most this much before the lease ends, its claim is refused `lease_active`
 * and hides it another lease, and the reaper wakes the task once the lease
 * has expired (invariant 8). Heartbeat renewals move it by a third of the
 * lease, past this margin, so they always extend.
 */
export function hideMarginMs(leaseDurationMs: number): number {
  return Math.min(2_000, Math.floor(leaseDurationMs / 10));
}

export class Attempt<P> {
  readonly fenced = new AbortController();
  refusal: Refusal | undefined;
  confirmedAt = Date.now();
  constructor(
    readonly ctx: WorkerContext,
    readonly msg: Message<"task_wakeup">,
    readonly task: Claimed<P>,
    readonly log: Logger,
    /** Until when (epoch ms, at the earliest) the wakeup is hidden already. */
    private hiddenUntil: number,
  ) {}

  get lease(): LeaseIdentity {
    return this.task;
  }

  fence(refusal: Refusal): void {
    this.refusal ??= refusal;
    this.fenced.abort();
  }

  /**
   * Keeps the wakeup hidden while the lease holds, so it reappears only once
   * it could be claimed; a move by no more than `marginMs` is skipped.
   */
  async keepHidden(until: Date, marginMs = 0): Promise<void> {
    if (this.fenced.signal.aborted || until.getTime() <= this.hiddenUntil + marginMs) return;
    try {
      await this.ctx.queue.extendVisibility(this.msg, until);
      this.hiddenUntil = until.getTime();
    } catch (err) {
      this.log.warn("could not extend the wakeup's visibility", { err });
    }
  }

  stale(): TaskResult {
    const r = this.refusal;
    this.log.warn(WORKER_LOG.fencedOut, { status: r?.status, code: r?.error });
    return { outcome: "stale", attempt: this.task.attempt };
  }
}

export async function runClaimed<P>(
  ctx: WorkerContext,
  wakeup: Wakeup,
  task: Claimed<P>,
  abandon: AbortSignal,
  parent: Logger,
  work: Work<P>,
): Promise<TaskResult> {
  const log = parent.child({ attempt: task.attempt });
  const a = new Attempt(ctx, wakeup.msg, task, log, wakeup.hiddenUntil);
  const signal = AbortSignal.any([abandon, a.fenced.signal]);
  await a.keepHidden(new Date(task.lease_expires_at), hideMarginMs(ctx.leaseDurationMs));
  const heartbeat = heartbeatFor(a, signal);
  let result: TaskResult;
  try {
    result = await work(a, signal);
  } catch (err) {
    // A request cut short because a heartbeat was refused meanwhile.
    if (a.fenced.signal.aborted) return a.stale();
    throw err;
  } finally {
    await heartbeat.stop();
  }
  // Completed or failed: the wakeup is done with, whatever a racing heartbeat heard.
  if (result.outcome === "succeeded" || result.outcome === "failed") await ackDone(ctx, wakeup.msg);
  return result;
}

/**
 * Acks the wakeup of an attempt the dispatcher has recorded as done, in the
 * background when the context has somewhere to put it: should the ack be
 * lost, the wakeup comes back, its claim is refused `task_finished`, and it
 * is acked then.
 */
async function ackDone(ctx: WorkerContext, msg: Message<"task_wakeup">): Promise<void> {
  if (ctx.acks === undefined) {
    await ctx.queue.ack(msg);
    return;
  }
  ctx.acks.run(() => ctx.queue.ack(msg), WORKER_LOG.ackFailed, {
    message_id: msg.id,
    task_id: msg.payload.task_id,
  });
}

/** Heartbeats for the attempt: each renewal keeps the wakeup hidden; a refusal fences it out. */
function heartbeatFor<P>(a: Attempt<P>, signal: AbortSignal): Heartbeat {
  return startHeartbeat({
    client: a.ctx.client,
    lease: a.lease,
    intervalMs: heartbeatInterval(a.ctx.leaseDurationMs),
    signal,
    log: a.log,
    onRenewed: (sentAt, expiresAt) => {
      a.confirmedAt = Math.max(a.confirmedAt, sentAt);
      void a.keepHidden(expiresAt);
    },
    onFenced: (refusal) => a.fence(refusal),
  });
}

/**
 * Before writing, make sure the lease still holds when the last word on it is
 * older than a heartbeat interval (the process may have been paused): a
 * fenced-out attempt then stops before it writes anything.
 */
export async function confirmLease<P>(a: Attempt<P>, signal: AbortSignal): Promise<boolean> {
  if (Date.now() - a.confirmedAt < heartbeatInterval(a.ctx.leaseDurationMs)) return true;
  const sentAt = Date.now();
  const reply = await a.ctx.client.heartbeat(a.lease, signal);
  if (!reply.ok) {
    a.fence(reply);
    return false;
  }
  a.confirmedAt = sentAt;
  await a.keepHidden(new Date(reply.body.lease_expires_at));
  return !signal.aborted;
}

/** An attempt that stopped early: fenced out, or abandoned (its wakeup reappears). */
export function ended<P>(a: Attempt<P>): TaskResult {
  return a.fenced.signal.aborted ? a.stale() : { outcome: "abandoned", attempt: a.task.attempt };
}

/** A refused publish, complete or fail: fenced out (401/403/409), or a refusal to record on the wakeup. */
export async function refused<P>(a: Attempt<P>, step: string, r: Refusal): Promise<TaskResult> {
  if (r.status === 409 || r.status === 401 || r.status === 403) {
    a.fence(r);
    return a.stale();
  }
  const reason = `${step} refused: ${r.status} ${r.error}: ${r.message}`;
  a.log.error(`${step} refused`, { status: r.status, code: r.error, reason });
  await a.ctx.queue.recordError(a.msg, reason);
  return { outcome: "refused", attempt: a.task.attempt };
}
