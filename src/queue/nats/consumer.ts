import type { Msg } from "@nats-io/transport-node";
import type { QueueName } from "../../contracts/queue";
import { checkIncoming } from "../contract";
import type { ConsumerOptions, Depth, Message, QueueConsumer } from "../seam";
import {
  type Delivery,
  deliveryDeadLetter,
  deliveryForgetError,
  deliveryHeld,
  deliveryOf,
  deliveryStored,
} from "./delivery";
import type { QueueNames } from "./names";
import type { ReadySignal } from "./signal";
import type { Store } from "./store";

/**
 * One queue from the receiving side, on a JetStream work-queue stream and
 * its durable pull consumer (shared by every receiver of the queue):
 * - receive: a pull that does not wait; a delivery is hidden for the
 *   consumer's ack wait, or for `visibilityTimeoutMs` when that differs (a
 *   nak with that delay, sent as soon as it arrives); `receiveCount` is the
 *   server's delivery count;
 * - ack: while the delivery is surely still ours (within its visibility),
 *   a consumer ack the server confirms — on a work-queue stream that removes
 *   the message; past it, the stored message is deleted instead, which says
 *   whether it was still there (another receiver may have acked it since);
 * - extendVisibility: a nak with the delay left until `until` — the
 *   delivery stays in flight and ackable, and comes back exactly then;
 * - recordError: the error stream keeps it by message id, read back when the
 *   message comes again;
 * - past `maxReceives`, a message is moved to the dead-letter stream
 *   instead of being returned, with its last error.
 */

const deliveries = new WeakMap<object, Delivery>();

/** Held-until times stop this much short of the server's deadline (message transit). */
const MARGIN_MS = 50;

export class NatsConsumer<Q extends QueueName> implements QueueConsumer<Q> {
  readonly queue: Q;

  constructor(
    private readonly store: Store,
    private readonly q: QueueNames & { queue: Q },
    private readonly options: ConsumerOptions,
    /** The durable consumer's own ack wait: no nak is needed when the options ask for it. */
    private readonly ackWaitMs: number,
    private readonly signal: ReadySignal,
  ) {
    this.queue = q.queue;
  }

  async receive(max: number): Promise<Message<Q>[]> {
    const n = Math.floor(max);
    if (n < 1) return [];
    let pulled: Msg[];
    // Before the pull: the server's ack timer starts later, so this is never past its deadline.
    const hiddenUntil = Date.now() + this.options.visibilityTimeoutMs - MARGIN_MS;
    try {
      pulled = await this.store.pull(this.q.stream, this.q.consumer, n);
    } catch (cause) {
      throw new Error(`receiving from ${this.queue}`, { cause });
    }
    if (this.options.visibilityTimeoutMs !== this.ackWaitMs) {
      for (const m of pulled) {
        if (m.reply !== undefined)
          this.store.deliveryNak(m.reply, this.options.visibilityTimeoutMs);
      }
    }
    const admitted = await Promise.all(pulled.map((m) => this.admit(m, hiddenUntil)));
    return admitted.filter((m) => m !== undefined);
  }

  /** A pulled message as a Message, or undefined when it was dead-lettered instead. */
  private async admit(m: Msg, hiddenUntil: number): Promise<Message<Q> | undefined> {
    const d = deliveryOf(m, hiddenUntil);
    if (d === undefined)
      throw new Error(`a pull from ${this.queue} brought a message without an ack subject`);
    if (d.receiveCount > 1) {
      const recorded = await this.store.errorGet(this.q, d.id);
      if (recorded !== null) {
        d.lastError = recorded;
        d.hasErrorEntry = true;
      }
    }
    const previous = d.receiveCount - 1;
    if (previous >= this.options.maxReceives) {
      const reason = `${d.lastError ?? "no error recorded"} (dead-lettered after ${previous} receives)`;
      await deliveryDeadLetter(this.store, this.q, d, reason, previous);
      return undefined;
    }
    const checked = checkIncoming(this.queue, parseJson(d.data));
    if (!checked.ok) {
      await deliveryDeadLetter(this.store, this.q, d, checked.reason, d.receiveCount);
      return undefined;
    }
    const message: Message<Q> = {
      id: d.id,
      queue: this.queue,
      payload: checked.payload,
      receiveCount: d.receiveCount,
      lastError: d.lastError,
      createdAt: new Date(d.createdAt),
    };
    deliveries.set(message, d);
    return message;
  }

  /** The delivery behind a message; for one not received here, what the stream holds under its id. */
  private async delivery(m: Message<Q>): Promise<Delivery | undefined> {
    const known = deliveries.get(m);
    if (known !== undefined) return known;
    if (!/^\d{1,15}$/.test(m.id)) return undefined;
    const stored = await this.store.messageGet(this.q.stream, { seq: Number(m.id) });
    return stored === null || stored.subject !== this.q.ready ? undefined : deliveryStored(stored);
  }

  async ack(m: Message<Q>): Promise<boolean> {
    const d = await this.delivery(m);
    if (d === undefined || d.settled) return false;
    let removed = true;
    if (deliveryHeld(d)) await this.store.deliveryAck(d.reply);
    else removed = await this.store.messageDelete(this.q.stream, d.seq);
    d.settled = true;
    if (removed) await deliveryForgetError(this.store, this.q, d);
    return removed;
  }

  /** Each ack confirmed by the server (none is counted on faith: a dropped link loses unconfirmed ones). */
  async ackBatch(messages: readonly Message<Q>[]): Promise<number> {
    const acked = await Promise.all([...new Set(messages)].map((m) => this.ack(m)));
    return acked.filter(Boolean).length;
  }

  async extendVisibility(
    m: Message<Q>,
    until: Date | { visibilityTimeoutMs: number },
  ): Promise<boolean> {
    const d = await this.delivery(m);
    if (d === undefined || d.settled) return false;
    if (d.reply === undefined) {
      throw new Error(`message ${m.id} of ${this.queue} was not received by this consumer`);
    }
    const held = deliveryHeld(d);
    if (!held && (await this.store.messageGet(this.q.stream, { seq: d.seq })) === null) {
      return false;
    }
    const now = Date.now();
    const delayMs = Math.max(
      0,
      until instanceof Date ? until.getTime() - now : until.visibilityTimeoutMs,
    );
    this.store.deliveryNak(d.reply, delayMs);
    d.hiddenUntil = now + delayMs - MARGIN_MS;
    return true;
  }

  async recordError(m: Message<Q>, error: string): Promise<void> {
    const d = deliveries.get(m);
    // Gone already (acked or dead-lettered here): nothing to note it on, as on pgqueue.
    if (d?.settled) return;
    await this.store.errorPut(this.q, m.id, error);
    if (d !== undefined) {
      d.lastError = error;
      d.hasErrorEntry = true;
    }
  }

  async deadLetter(m: Message<Q>, error: string): Promise<boolean> {
    const d = await this.delivery(m);
    if (d === undefined) return false;
    return deliveryDeadLetter(this.store, this.q, d, error, m.receiveCount);
  }

  wait(timeoutMs: number, abort?: AbortSignal): Promise<void> {
    return this.signal.wait(timeoutMs, abort);
  }

  depth(): Promise<Depth> {
    return this.store.queueCounts(this.q);
  }
}

/** The payload as JSON, or the text itself when it is not JSON (it then breaks every contract). */
export function parseJson(data: Uint8Array): unknown {
  const text = new TextDecoder().decode(data);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
