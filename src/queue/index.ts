import type { QueueName, QueuePayload } from "../contracts/queue";
import type { Db } from "../db/connect";
import { pgPublisher } from "./pg/publisher";

/**
 * The outbox drainer's one call, kept until the drainer takes a
 * `(tx) => QueuePublisher` (`backend.publisher(tx)`); then this file goes.
 * Nothing else may import it: every other caller goes through ./seam.ts.
 */
export function publishBatch<Q extends QueueName>(
  tx: Db,
  queue: Q,
  payloads: readonly QueuePayload<Q>[],
): Promise<string[]> {
  return pgPublisher(tx).publish(
    queue,
    payloads.map((payload) => ({ payload })),
  );
}
