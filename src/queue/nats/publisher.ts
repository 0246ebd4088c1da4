import { RequestError } from "@nats-io/transport-node";
import type { QueueName } from "../../contracts/queue";
import { checkOutgoing } from "../contract";
import type { Outgoing, QueuePublisher } from "../seam";
import type { Names } from "./names";
import type { Store } from "./store";

/**
 * Publishes to a queue's stream: to its ready subject, or to its delayed
 * subject (with the due time in a header, see ./promoter.ts) when
 * `availableAt` is still ahead. A `dedupeId` becomes `Nats-Msg-Id`: a
 * repeat within the stream's duplicate window stores nothing and answers
 * with the first copy's id.
 */
export class NatsPublisher implements QueuePublisher {
  constructor(
    private readonly store: Store,
    private readonly names: Names,
  ) {}

  /** Each message's id, in order (what `Message.id` and `DeadLetter.id` will say). */
  async publish<Q extends QueueName>(
    queue: Q,
    messages: readonly Outgoing<Q>[],
  ): Promise<string[]> {
    const q = this.names.of(queue);
    const checked = messages.map((m) => ({ ...m, payload: checkOutgoing(queue, m.payload) }));
    const now = Date.now();
    try {
      return await Promise.all(
        checked.map(async (m) => {
          const at = m.availableAt?.getTime();
          const later = at !== undefined && at > now;
          const ack = await this.store.messagePublish(
            later ? q.delayed : q.ready,
            JSON.stringify(m.payload),
            {
              ...(later ? { envelope: { availableAt: at } } : {}),
              ...(m.dedupeId === undefined ? {} : { dedupeId: m.dedupeId }),
            },
          );
          return String(ack.seq);
        }),
      );
    } catch (cause) {
      const why = noStream(cause)
        ? `no stream answered for ${q.ready} (namespace ${this.names.namespace}): the broker may be failing over, or the streams are missing (run harness migrate with this QUEUE_URL and QUEUE_NAMESPACE)`
        : `publishing ${messages.length} message(s) to ${queue}`;
      throw new Error(why, { cause });
    }
  }
}

/** The broker's answer when no stream listens on the subject. */
function noStream(err: unknown): boolean {
  const cause = err instanceof Error ? err.cause : undefined;
  return [err, cause].some((e) => e instanceof RequestError && e.isNoResponders());
}
