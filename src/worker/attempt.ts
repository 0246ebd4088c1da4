import { randomUUID } from "node:crypto";
import { NDJSON } from "../contracts/common";
import type { SyntheticPayload } from "../contracts/task";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import type { Message } from "../queue/seam";
import { sleep } from "../sleep";
import { alertsFor, toJsonl } from "./alerts";
import type { ClaimEnvelope, LeaseIdentity, Reply } from "./client";
import type { TaskResult, Wakeup, WorkerContext } from "./context";
import { type Heartbeat, startHeartbeat } from "./heartbeat";
import { WORKER_LOG } from "./logs";

/**
 * One claimed attempt: make the batch, work at least `work_ms` while
 * heartbeating, write the batch, buffer-publish, complete, ack the wakeup.
 * Once the dispatcher refuses this attempt's lease, the attempt stops where it
 * is and publishes nothing more; its wakeup is left for whoever holds the lease.
 */

export type ClaimedTask = Omit<ClaimEnvelope, "payload"> & { payload: SyntheticPayload };
type Refusal = Extract<Reply<unknown>, { ok: false }>;

/** Where an attempt's batch goes: `<org_id>/<task_id>/<attempt>-<unique>.jsonl`. */
export function batchKey(task: { org_id: string; task_id: string; attempt: number }): string {
  return `${task.org_id}/${task.task_id}/${task.attempt}-${randomUUID()}.jsonl`;
}

/** Heartbeats come this often: a third of the lease. */
export function heartbeatInterval(leaseDurationMs: number): number {
  return Math.max(50, Math.floor(leaseDurationMs / 3));
}

class Attempt {
  readonly fenced = new AbortController();
  refusal: Refusal | undefined;
  confirmedAt = Date.now();
  constructor(
    readonly ctx: WorkerContext,
    readonly msg: Message<"task_wakeup">,
    readonly task: ClaimedTask,
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

  /** Keeps the wakeup hidden while the lease holds, so it reappears only once it could be claimed. */
  async keepHidden(until: Date): Promise<void> {
    if (this.fenced.signal.aborted || until.getTime() <= this.hiddenUntil) return;
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

export async function runClaimed(
  ctx: WorkerContext,
  wakeup: Wakeup,
  task: ClaimedTask,
  abandon: AbortSignal,
  parent: Logger,
): Promise<TaskResult> {
  const log = parent.child({ attempt: task.attempt });
  const a = new Attempt(ctx, wakeup.msg, task, log, wakeup.hiddenUntil);
  const signal = AbortSignal.any([abandon, a.fenced.signal]);
  await a.keepHidden(new Date(task.lease_expires_at));
  const heartbeat = heartbeatFor(a, signal);
  try {
    const result = await work(a, signal);
    if (result !== undefined) return result;
  } catch (err) {
    // A request cut short because a heartbeat was refused meanwhile.
    if (a.fenced.signal.aborted) return a.stale();
    throw err;
  } finally {
    await heartbeat.stop();
  }
  // Completed: the wakeup is done with, whatever a racing heartbeat heard.
  await ctx.queue.ack(wakeup.msg);
  return { outcome: "succeeded", attempt: task.attempt, alerts: alertCount(task.payload) };
}

/** Heartbeats for the attempt: each renewal keeps the wakeup hidden; a refusal fences it out. */
function heartbeatFor(a: Attempt, signal: AbortSignal): Heartbeat {
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

function alertCount(payload: SyntheticPayload): number {
  return typeof payload.alerts === "number" ? payload.alerts : payload.alerts.length;
}

/** The attempt's steps; undefined when it completed, else how it ended early. */
async function work(a: Attempt, signal: AbortSignal): Promise<TaskResult | undefined> {
  const { ctx, task } = a;
  const startedAt = Date.now();
  const body = toJsonl(alertsFor(task.org_id, task.task_id, task.payload));
  await sleep(startedAt + (task.payload.work_ms ?? 0) - Date.now(), signal);
  if (signal.aborted) return ended(a);
  if (!(await confirmLease(a, signal))) return ended(a);
  // A task of zero alerts has no batch to publish (an empty one is refused): it just completes.
  if (body.byteLength > 0) {
    const put = await ctx.store.put(batchKey(task), body, { contentType: NDJSON });
    failpoint("worker.after_write");
    if (signal.aborted) return ended(a);
    const batch = { batch_uri: put.uri, content_type: NDJSON, batch_size_bytes: put.size };
    const published = await ctx.client.bufferPublish(a.lease, batch, signal);
    if (!published.ok) return refused(a, "buffer-publish", published);
    failpoint("worker.after_publish");
  }
  const completed = await ctx.client.complete(a.lease, signal);
  if (!completed.ok) return refused(a, "complete", completed);
  return undefined;
}

/**
 * Before writing, make sure the lease still holds when the last word on it is
 * older than a heartbeat interval (the process may have been paused): a
 * fenced-out attempt then stops before it writes anything.
 */
async function confirmLease(a: Attempt, signal: AbortSignal): Promise<boolean> {
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

function ended(a: Attempt): TaskResult {
  return a.fenced.signal.aborted ? a.stale() : { outcome: "abandoned", attempt: a.task.attempt };
}

/** A refused publish or complete: fenced out (401/403/409), or a refusal to record on the wakeup. */
async function refused(a: Attempt, step: string, r: Refusal): Promise<TaskResult> {
  if (r.status === 409 || r.status === 401 || r.status === 403) {
    a.fence(r);
    return a.stale();
  }
  const reason = `${step} refused: ${r.status} ${r.error}: ${r.message}`;
  a.log.error(`${step} refused`, { status: r.status, code: r.error, reason });
  await a.ctx.queue.recordError(a.msg, reason);
  return { outcome: "refused", attempt: a.task.attempt };
}
