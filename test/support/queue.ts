import type { QueueName, QueuePayload } from "../../src/contracts/queue";
import type { QueueBackend } from "../../src/queue/seam";

/** Publishes payloads (checked against their contract) on a backend's queue; returns their ids. */
export function publishPayloads<Q extends QueueName>(
  backend: QueueBackend,
  queue: Q,
  payloads: readonly QueuePayload<Q>[],
): Promise<string[]> {
  return backend.publisher().publish(
    queue,
    payloads.map((payload) => ({ payload })),
  );
}
