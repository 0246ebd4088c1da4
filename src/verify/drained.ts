import type { AuditOutbox } from "../reads/audit";
import type { QueueLeftovers } from "./queues";

/**
 * What a quiet pipeline leaves behind: no pending outbox row, no live
 * message in the queues it drains (`task_completed` is for downstream
 * consumers and may stay; ./queues.ts reads them through the seam), no rejected outbox row, and no dead letter but the injected
 * poison's.
 */

export interface DrainFindings {
  pending: number;
  /** Outbox rows the drainer rejected (they break their queue's contract). */
  rejected: string[];
  liveMessages: number;
  deadLetters: Record<string, number>;
  /** Dead letters not explained by injected poison batches. */
  unexpectedDead: number;
}

export function checkDrained(
  outbox: readonly AuditOutbox[],
  queues: QueueLeftovers,
  poisonInjected: boolean,
): DrainFindings {
  const unexpectedDead = Object.entries(queues.deadLetters)
    .filter(([q]) => q !== "buffer_queue.dlq" || !poisonInjected)
    .reduce((n, [, c]) => n + c, 0);
  return {
    pending: outbox.filter((o) => o.status === "pending").length,
    rejected: outbox
      .filter((o) => o.status === "rejected")
      .map((o) => `${o.id} (${o.queue_name}, task ${o.task_id})`),
    liveMessages: queues.live,
    deadLetters: queues.deadLetters,
    unexpectedDead,
  };
}
