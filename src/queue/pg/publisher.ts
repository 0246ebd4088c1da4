import type { QueueName } from "../../contracts/queue";
import type { Db } from "../../db/connect";
import { checkOutgoing } from "../contract";
import type { Outgoing, QueuePublisher } from "../seam";
import { messagesInsert } from "./sql";

/**
 * Publishes on `db`: a pool, or a transaction, in which case the messages
 * exist (and listeners hear of them) only if and when it commits. `dedupeId`
 * is not needed here: published in the transaction that marks its outbox row
 * sent, a message is written exactly once per commit.
 */
export function pgPublisher(db: Db): QueuePublisher {
  return {
    async publish<Q extends QueueName>(queue: Q, messages: readonly Outgoing<Q>[]) {
      const checked = messages.map((m) => ({
        payload: checkOutgoing(queue, m.payload),
        availableAt: m.availableAt,
      }));
      try {
        return await messagesInsert(db, { queue, messages: checked });
      } catch (cause) {
        throw new Error(`publishing ${messages.length} message(s) to ${queue}`, { cause });
      }
    },
  };
}
