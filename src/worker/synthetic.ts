import { NDJSON } from "../contracts/common";
import type { SyntheticPayload } from "../contracts/task";
import { failpoint } from "../failpoints";
import { sleep } from "../sleep";
import { alertsFor, toJsonl } from "./alerts";
import { type Attempt, batchKey, confirmLease, ended, refused } from "./attempt";
import type { BatchBody } from "./client";
import type { TaskResult } from "./context";

/**
 * The default worker's work on an attempt: make the batch the payload
 * describes, work at least `work_ms` (heartbeating meanwhile), write the
 * batch, then complete carrying it: the dispatcher publishes the batch and
 * completes in one fenced statement, so the one batch of an attempt costs
 * no buffer-publish call of its own.
 */

function alertCount(payload: SyntheticPayload): number {
  return typeof payload.alerts === "number" ? payload.alerts : payload.alerts.length;
}

export async function syntheticWork(
  a: Attempt<SyntheticPayload>,
  signal: AbortSignal,
): Promise<TaskResult> {
  const { ctx, task } = a;
  const startedAt = Date.now();
  const body = toJsonl(alertsFor(task.org_id, task.task_id, task.payload));
  const workLeftMs = startedAt + (task.payload.work_ms ?? 0) - Date.now();
  if (workLeftMs > 0) await sleep(workLeftMs, signal);
  if (signal.aborted) return ended(a);
  if (!(await confirmLease(a, signal))) return ended(a);
  // A task of zero alerts has no batch to publish (an empty one is refused): it just completes.
  let batch: BatchBody | undefined;
  if (body.byteLength > 0) {
    const put = await ctx.store.create(batchKey(task), body, { contentType: NDJSON });
    failpoint("worker.after_write");
    if (signal.aborted) return ended(a);
    batch = { batch_uri: put.uri, content_type: NDJSON, batch_size_bytes: put.size };
  }
  const completed = await ctx.client.complete(a.lease, signal, batch);
  if (!completed.ok) return refused(a, "complete", completed);
  failpoint("worker.after_complete");
  return { outcome: "succeeded", attempt: task.attempt, alerts: alertCount(task.payload) };
}
