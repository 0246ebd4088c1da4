import type { Db } from "../db/connect";
import { type TaskListRow, type TaskRow, taskGet } from "../reads/tasks";
import { sinkBatchesOf, taskAttemptsOf, taskOutboxOf } from "../reads/timeline";
import type { TaskDetail, TaskItem } from "./contract";
import { attemptTimeline } from "./timeline";

/** A task's page: the row, a summary of its payload, its attempts' timeline, outbox rows and batches. */

const PREVIEW_CHARS = 4000;
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function numberField(payload: unknown, key: string): number | null {
  if (typeof payload !== "object" || payload === null || !(key in payload)) return null;
  const value: unknown = Reflect.get(payload, key);
  if (typeof value === "number") return value;
  return Array.isArray(value) ? value.length : null;
}

export function payloadSummary(payload: unknown, bytes: number): TaskDetail["payload"] {
  const text = JSON.stringify(payload, null, 2) ?? "null";
  const isObject = typeof payload === "object" && payload !== null && !Array.isArray(payload);
  return {
    bytes,
    keys: isObject ? Object.keys(payload).slice(0, 50) : [],
    alerts: numberField(payload, "alerts"),
    work_ms: numberField(payload, "work_ms"),
    preview: text.slice(0, PREVIEW_CHARS),
    truncated: text.length > PREVIEW_CHARS,
  };
}

export function taskItem(t: TaskListRow | TaskRow): TaskItem {
  return {
    id: t.id,
    org_id: t.org_id,
    status: t.status,
    attempt: t.attempt,
    created_at: t.created_at.toISOString(),
    updated_at: t.updated_at.toISOString(),
    finished_at: iso(t.finished_at),
    lease_expires_at: iso(t.lease_expires_at),
    lease_expired: t.lease_expired,
    last_error: t.last_error,
  };
}

export async function readTaskDetail(
  dbs: { state: Db; data: Db },
  taskId: string,
): Promise<TaskDetail | null> {
  const [task, attempts, outbox, batches] = await Promise.all([
    taskGet(dbs.state, { taskId }),
    taskAttemptsOf(dbs.state, { taskId }),
    taskOutboxOf(dbs.state, { taskId }),
    sinkBatchesOf(dbs.data, { taskId }),
  ]);
  if (task === null) return null;
  return {
    at: task.now.toISOString(),
    task: taskItem(task),
    payload: payloadSummary(task.payload, task.payload_bytes),
    attempts: attemptTimeline(task, attempts, outbox, batches),
    outbox: outbox.map((o) => ({
      id: o.id,
      queue: o.queue_name,
      status: o.status,
      attempt: o.attempt,
      created_at: o.created_at.toISOString(),
      sent_at: iso(o.sent_at),
      batch_uri: o.batch_uri,
      batch_size_bytes: o.batch_size_bytes,
    })),
    batches: batches.map((b) => ({ ...b, committed_at: b.committed_at.toISOString() })),
  };
}
