import * as v from "valibot";
import { Attempt, NDJSON, OrgId, Rfc3339, Uuid } from "./common";

/** `task_wakeup`: a task may need work. Duplicates are expected and harmless. */
export const TaskWakeup = v.strictObject({ task_id: Uuid });
export type TaskWakeup = v.InferOutput<typeof TaskWakeup>;

/** `buffer_queue`: a batch to ingest; org and task come from the dispatcher's task row. */
export const BufferMessage = v.strictObject({
  task_id: Uuid,
  org_id: OrgId,
  attempt: Attempt,
  batch_uri: v.pipe(v.string(), v.minLength(1), v.maxLength(2048)),
  content_type: v.literal(NDJSON),
  batch_size_bytes: v.pipe(v.number(), v.integer(), v.minValue(1)),
});
export type BufferMessage = v.InferOutput<typeof BufferMessage>;

/** `task_completed`: downstream routing once a task succeeded. */
export const TaskCompleted = v.strictObject({
  task_id: Uuid,
  org_id: OrgId,
  attempt: Attempt,
  completed_at: Rfc3339,
});
export type TaskCompleted = v.InferOutput<typeof TaskCompleted>;

export const QUEUES = {
  task_wakeup: TaskWakeup,
  buffer_queue: BufferMessage,
  task_completed: TaskCompleted,
} as const;

export type QueueName = keyof typeof QUEUES;
export type QueuePayload<Q extends QueueName> = v.InferOutput<(typeof QUEUES)[Q]>;
export const QUEUE_NAMES = Object.keys(QUEUES).filter((q): q is QueueName => q in QUEUES);

export const dlqName = (queue: QueueName): string => `${queue}.dlq`;

/** A dead letter as `harness dlq list --json` shows it. */
export const DeadLetterEnvelope = v.strictObject({
  id: v.pipe(v.string(), v.regex(/^\d+$/)),
  queue: v.picklist(["task_wakeup", "buffer_queue", "task_completed"]),
  payload: v.unknown(),
  receive_count: v.pipe(v.number(), v.integer(), v.minValue(0)),
  last_error: v.nullable(v.string()),
  created_at: Rfc3339,
});
export type DeadLetterEnvelope = v.InferOutput<typeof DeadLetterEnvelope>;
