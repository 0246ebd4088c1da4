import { NDJSON } from "../../contracts/common";
import { MAX_FAIL_REASON } from "../../contracts/http";
import type { TaskPayload } from "../../contracts/task";
import { failpoint } from "../../failpoints";
import { type Attempt, confirmLease, ended, refused } from "../attempt";
import type { ExecContext, TaskResult } from "../context";
import { WORKER_LOG } from "../logs";
import type { Batch } from "./batches";
import { type ExecOutcome, runExec } from "./run";

/**
 * `harness worker --exec`: a task program does the attempt's work, while the
 * attempt heartbeats (./../attempt.ts). The program's outcome decides:
 * - exit 0, every line good: buffer-publish each batch, then complete;
 * - a failure: `POST /v1/task/fail` with its reason — retryable for a
 *   non-zero exit, a timeout or a store error (the next attempt may fare
 *   better), not retryable for a bad line or too much output (the program
 *   broke the contract: it would again);
 * - the lease lost (a heartbeat's 409) or the worker abandoning: the program
 *   was stopped, and nothing of it is published.
 */

export function execWork(exec: ExecContext) {
  return async (a: Attempt<TaskPayload>, signal: AbortSignal): Promise<TaskResult> => {
    const { ctx, task } = a;
    const outcome = await runExec(
      exec.plan,
      { task_id: task.task_id, org_id: task.org_id, attempt: task.attempt, payload: task.payload },
      {
        store: ctx.store,
        log: a.log,
        maxBatchBytes: exec.maxBatchBytes,
        maxBatches: exec.maxBatches,
      },
      signal,
    );
    if (outcome.kind === "stopped") return ended(a);
    if (outcome.kind === "failed") return failAttempt(a, outcome, signal);
    return publish(a, outcome, signal);
  };
}

async function failAttempt(
  a: Attempt<TaskPayload>,
  o: Extract<ExecOutcome, { kind: "failed" }>,
  signal: AbortSignal,
): Promise<TaskResult> {
  const reason =
    o.reason.length > MAX_FAIL_REASON ? `${o.reason.slice(0, MAX_FAIL_REASON - 1)}…` : o.reason;
  a.log.warn(WORKER_LOG.attemptFailed, { reason, retryable: o.retryable });
  const r = await a.ctx.client.fail(a.lease, { reason, retryable: o.retryable }, signal);
  if (!r.ok) return refused(a, "fail", r);
  return { outcome: "failed", attempt: a.task.attempt, reason };
}

async function publish(
  a: Attempt<TaskPayload>,
  o: Extract<ExecOutcome, { kind: "succeeded" }>,
  signal: AbortSignal,
): Promise<TaskResult> {
  const { ctx } = a;
  if (!(await confirmLease(a, signal))) return forget(a, o.batches);
  if (o.batches.length > 0) failpoint("worker.after_write");
  for (const [i, b] of o.batches.entries()) {
    if (signal.aborted) return forget(a, o.batches.slice(i));
    const batch = { batch_uri: b.uri, content_type: NDJSON, batch_size_bytes: b.size };
    const published = await ctx.client.bufferPublish(a.lease, batch, signal);
    if (!published.ok) return refused(a, "buffer-publish", published);
  }
  if (o.batches.length > 0) failpoint("worker.after_publish");
  const completed = await ctx.client.complete(a.lease, signal);
  if (!completed.ok) return refused(a, "complete", completed);
  return { outcome: "succeeded", attempt: a.task.attempt, alerts: o.lines };
}

/** Batches this attempt will not publish: deleted (best effort); any published before stay for the sink. */
async function forget(a: Attempt<TaskPayload>, batches: readonly Batch[]): Promise<TaskResult> {
  for (const b of batches) await a.ctx.store.delete(b.key).catch(() => {});
  return ended(a);
}
