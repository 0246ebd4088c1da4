import { dlqName, QUEUE_NAMES, type QueueName } from "../../contracts/queue";
import type { Db } from "../../db/connect";
import type { DeadLetter, Depth, QueueAdmin } from "../seam";
import { messagesDepth, messagesListDead, messagesRedrive } from "./sql";

/** Depths, dead letters and redrive on `state.queue_messages`. */
export function pgAdmin(db: Db): QueueAdmin {
  return {
    async depths() {
      const all = await messagesDepth(db);
      const zero: Depth = { ready: 0, inFlight: 0, delayed: 0 };
      return QUEUE_NAMES.map((queue) => {
        const live = all.get(queue) ?? zero;
        const dead = all.get(dlqName(queue)) ?? zero;
        return { queue, ...live, dead: dead.ready + dead.inFlight + dead.delayed };
      });
    },

    async listDeadLetters(p) {
      const byDlq = new Map((p.queues ?? QUEUE_NAMES).map((q) => [dlqName(q), q]));
      const rows = await messagesListDead(db, { dlqs: [...byDlq.keys()], limit: p.limit ?? 1000 });
      return rows.flatMap((row): DeadLetter[] => {
        const queue = byDlq.get(row.queue_name);
        if (queue === undefined) return [];
        return [
          {
            id: row.id,
            queue,
            payload: row.payload,
            receiveCount: row.receive_count,
            lastError: row.last_error,
            createdAt: row.created_at,
          },
        ];
      });
    },

    redrive(p: { queue: QueueName; id?: string }) {
      const one = p.id === undefined ? {} : { id: p.id };
      return messagesRedrive(db, { queue: p.queue, ...one });
    },
  };
}
