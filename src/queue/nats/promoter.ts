import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import { createLogger } from "../../log";
import { readEnvelope } from "./envelope";
import type { QueueNames } from "./names";
import type { Store } from "./store";

/**
 * JetStream 2.9 has no scheduled delivery, so a message published with a
 * future `availableAt` goes to the queue's delayed subject instead, and a
 * receiving process moves it to the ready subject once due. Here a delivery
 * that comes early is nak'd with the time left (the server hands it back
 * then); one that is due is published to ready — same id, same creation
 * time, a fresh receive count — and only then acked. A mover that dies in
 * between is covered by the stream's duplicate window (`promote:<seq>`).
 * Delayed messages therefore never count as receives, and `depth` reports
 * them apart.
 */

const log = createLogger("queue");
/** Retry a move that failed (the broker away) after this long. */
const RETRY_MS = 1_000;

export const DELAYED_MOVED = "delayed message moved to ready";

export async function promoteOne(store: Store, q: QueueNames, m: JsMsg): Promise<void> {
  const env = readEnvelope(m.headers);
  const left = (env.availableAt ?? 0) - Date.now();
  if (left > 0) {
    m.nak(left);
    return;
  }
  const id = env.id ?? String(m.seq);
  const createdAt = env.createdAt ?? Number(m.timestampNanos / 1_000_000n);
  await store.messagePublish(q.ready, m.data, {
    envelope: { id, createdAt },
    dedupeId: `promote:${m.seq}`,
  });
  await m.ackAck();
  log.debug(DELAYED_MOVED, { queue: q.queue, message_id: id });
}

/** One process's mover for one queue's delayed messages; runs until `stop`. */
export class Promoter {
  private messages: ConsumerMessages | undefined;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly q: QueueNames,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await this.store.js.consumers.get(this.q.stream, this.q.delayedConsumer);
        if (this.stopped) return;
        this.messages = await consumer.consume({ max_messages: 100, expires: 5_000 });
        for await (const m of this.messages) {
          await promoteOne(this.store, this.q, m).catch((err: unknown) => {
            log.warn("could not move a delayed message", { queue: this.q.queue, err });
            m.nak(RETRY_MS);
          });
        }
      } catch (err) {
        if (this.stopped) return;
        log.warn("delayed-message mover stopped, restarting", { queue: this.q.queue, err });
        await Bun.sleep(RETRY_MS);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close().catch(() => undefined);
    await this.done;
  }
}
