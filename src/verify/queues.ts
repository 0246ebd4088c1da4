import { dlqName, QUEUE_NAMES, type QueueName } from "../contracts/queue";
import type { QueueAdmin } from "../queue/seam";

/**
 * What the queues still hold at the end of a run, read through the queue
 * seam (depths and dead letters), never from a backend's own tables: the
 * checker's "queues are empty" and dead-letter findings then mean the same
 * on pgqueue and on NATS.
 */

/** The queues the pipeline itself drains; `task_completed` is for downstream consumers and may stay. */
const DRAINED: readonly QueueName[] = ["task_wakeup", "buffer_queue"];

/** Messages still in the drained queues: ready, in flight or delayed. */
export async function liveMessageCount(admin: QueueAdmin): Promise<number> {
  const depths = await admin.depths();
  return depths
    .filter((d) => DRAINED.includes(d.queue))
    .reduce((n, d) => n + d.ready + d.inFlight + d.delayed, 0);
}

const taskIdOf = (payload: unknown): string | undefined =>
  typeof payload === "object" && payload !== null && "task_id" in payload
    ? String(payload.task_id)
    : undefined;

/** What the queues hold at the end of a run. */
export interface QueueLeftovers {
  /** Messages still in task_wakeup and buffer_queue: ready, in flight or delayed. */
  live: number;
  /** Dead letters that name one of the run's tasks, by dead-letter queue (`buffer_queue.dlq`). */
  deadLetters: Record<string, number>;
}

export async function queueLeftovers(
  admin: QueueAdmin,
  p: { taskIds: readonly string[] },
): Promise<QueueLeftovers> {
  const [live, deadLetters] = await Promise.all([liveMessageCount(admin), deadLettersOf(admin, p)]);
  return { live, deadLetters };
}

/** Dead letters that name one of the tasks, counted by dead-letter queue (`buffer_queue.dlq`). */
export async function deadLettersOf(
  admin: QueueAdmin,
  p: { taskIds: readonly string[] },
): Promise<Record<string, number>> {
  const ids = new Set(p.taskIds);
  const letters = await admin.listDeadLetters({
    queues: QUEUE_NAMES,
    limit: Number.MAX_SAFE_INTEGER,
  });
  const counts: Record<string, number> = {};
  for (const d of letters) {
    const taskId = taskIdOf(d.payload);
    if (taskId === undefined || !ids.has(taskId)) continue;
    const name = dlqName(d.queue);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}
