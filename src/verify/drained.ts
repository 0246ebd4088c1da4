import type { AuditOutbox } from "../reads/audit";

/**
 * What a quiet pipeline leaves behind: no pending outbox row, no live
 * message for the tasks (`task_completed` is for downstream consumers and
 * may stay), no rejected outbox row, and no dead letter but the injected
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
  messages: ReadonlyArray<{ queue_name: string }>,
  poisonInjected: boolean,
): DrainFindings {
  const deadLetters: Record<string, number> = {};
  for (const m of messages) {
    if (m.queue_name.endsWith(".dlq"))
      deadLetters[m.queue_name] = (deadLetters[m.queue_name] ?? 0) + 1;
  }
  const unexpectedDead = Object.entries(deadLetters)
    .filter(([q]) => q !== "buffer_queue.dlq" || !poisonInjected)
    .reduce((n, [, c]) => n + c, 0);
  return {
    pending: outbox.filter((o) => o.status === "pending").length,
    rejected: outbox
      .filter((o) => o.status === "rejected")
      .map((o) => `${o.id} (${o.queue_name}, task ${o.task_id})`),
    liveMessages: messages.filter(
      (m) => !m.queue_name.endsWith(".dlq") && m.queue_name !== "task_completed",
    ).length,
    deadLetters,
    unexpectedDead,
  };
}
