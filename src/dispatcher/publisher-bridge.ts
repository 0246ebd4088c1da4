import type { QueueName } from "../contracts/queue";
import type { Db } from "../db/connect";
import { publishBatch } from "../queue";
import type { Outgoing, QueuePublisher } from "../queue/seam";

/**
 * BRIDGE, to be replaced at merge by the queue seam's pgqueue backend
 * (`backend.publisher(tx)`): a QueuePublisher over today's
 * `publishBatch(tx, queue, payloads, { availableAt })`, publishing inside
 * the drainer's transaction: a row's message and its `sent` mark commit
 * together, so `dedupeId` is not needed here and is ignored. Messages are
 * grouped by their `availableAt`, the one visibility time `publishBatch`
 * takes per call.
 */
export function bridgePublisher(tx: Db): QueuePublisher {
  return {
    async publish<Q extends QueueName>(queue: Q, messages: readonly Outgoing<Q>[]) {
      const byTime = new Map<number | undefined, Outgoing<Q>[]>();
      for (const m of messages) {
        const at = m.availableAt?.getTime();
        const list = byTime.get(at) ?? [];
        if (list.length === 0) byTime.set(at, list);
        list.push(m);
      }
      for (const [at, list] of byTime) {
        const payloads = list.map((m) => m.payload);
        await publishBatch(
          tx,
          queue,
          payloads,
          at === undefined ? {} : { availableAt: new Date(at) },
        );
      }
      return messages.length;
    },
  };
}
