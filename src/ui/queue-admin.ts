import type { Db } from "../db/connect";
import { depths, listDeadLetters, redrive } from "../queue";
import type { QueueAdmin } from "../queue/seam";

/**
 * The dashboard reads depths and dead letters and redrives through the
 * queue seam's `QueueAdmin`. Until the queue backends implement it, this
 * adapter builds one from pgqueue's functions on the STATE database.
 */
export function queueAdminOf(db: Db): QueueAdmin {
  return {
    depths: () => depths(db),
    async listDeadLetters(p) {
      const rows = await listDeadLetters(db, p.queues, p.limit);
      return rows.map((r) => ({
        id: r.id,
        queue: r.queue,
        payload: r.payload,
        receiveCount: r.receive_count,
        lastError: r.last_error,
        createdAt: r.created_at,
      }));
    },
    redrive: (p) => redrive(db, p.queue, p.id),
  };
}
