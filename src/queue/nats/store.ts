import {
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type PubAck,
  type StoredMsg,
} from "@nats-io/jetstream";
import { createInbox, type Msg, type NatsConnection, nanos } from "@nats-io/transport-node";
import { sleep } from "../../sleep";
import { type Envelope, envelopeHeaders } from "./envelope";
import type { QueueNames } from "./names";

/**
 * The JetStream operations the NATS backend is made of, one named function
 * each (noun first, like pgqueue's SQL). Every call needs only the broker
 * permissions deploy/nats/ gives the role that makes it.
 */

/** MSG.GET: no such message. */
const NO_MESSAGE_FOUND = 10037;
/** MSG.DELETE failed: the message is not (or no longer) there. */
const MSG_DELETE_FAILED = 10057;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

/** How long a pull waits for the server's answer before it gives up (a dropped link). */
const PULL_DEADLINE_MS = 5_000;
/**
 * A JetStream API request answered 503 ("JetStream system temporarily
 * unavailable": a cluster electing its leaders after losing a node) is sent
 * again, up to this long after the first try.
 */
const UNAVAILABLE_FOR_MS = 10_000;

/** `request`, sent again while the JetStream API answers 503, for up to `forMs` (see UNAVAILABLE_FOR_MS). */
export async function whileUnavailable<T>(
  request: () => Promise<T>,
  forMs = UNAVAILABLE_FOR_MS,
): Promise<T> {
  const deadline = Date.now() + forMs;
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 1_000)) {
    try {
      return await request();
    } catch (err) {
      const unavailable = err instanceof JetStreamApiError && err.status === 503;
      if (!unavailable || Date.now() + delayMs > deadline) throw err;
      await sleep(delayMs);
    }
  }
}

export function isMissingResource(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === STREAM_NOT_FOUND || err.code === CONSUMER_NOT_FOUND)
  );
}

export class Store {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly inboxPrefix: string,
  ) {}

  static async open(nc: NatsConnection, inboxPrefix: string): Promise<Store> {
    // No `$JS.API.INFO` probe: the roles' broker users may not ask it.
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 5_000 });
    return new Store(nc, jetstream(nc, { timeout: 5_000 }), jsm, inboxPrefix);
  }

  /**
   * Up to `max` messages from a durable pull consumer, without waiting: the
   * server sends what it has, then a 404 (none) or 408 (fewer than asked).
   */
  async pull(stream: string, consumer: string, max: number): Promise<Msg[]> {
    const inbox = createInbox(this.inboxPrefix);
    const sub = this.nc.subscribe(inbox, { max: max + 1 });
    const got: Msg[] = [];
    const deadline = setTimeout(() => sub.unsubscribe(), PULL_DEADLINE_MS);
    try {
      this.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
        JSON.stringify({ batch: max, no_wait: true }),
        { reply: inbox },
      );
      for await (const m of sub) {
        const code = m.headers?.code ?? 0;
        if (code === 404 || code === 408) break;
        if (code !== 0) {
          throw new Error(`pulling from ${consumer}: ${code} ${m.headers?.description ?? ""}`);
        }
        got.push(m);
        if (got.length >= max) break;
      }
      return got;
    } finally {
      clearTimeout(deadline);
      sub.unsubscribe();
    }
  }

  /**
   * Hands a delivery back to the server, to be delivered again after
   * `delayMs` (0: at once). Until then it stays with its receiver, in
   * flight, and may still be acked: this is how visibility is set.
   */
  deliveryNak(reply: string, delayMs: number): void {
    const delay = Math.max(0, Math.round(delayMs));
    this.nc.publish(
      reply,
      delay === 0 ? "-NAK" : `-NAK ${JSON.stringify({ delay: nanos(delay) })}`,
    );
  }

  /**
   * Acks a delivery through its consumer, and waits for the server to say
   * it has done so: on a work-queue stream the message is then gone.
   */
  async deliveryAck(reply: string): Promise<void> {
    await this.nc.request(reply, "+ACK", { timeout: 5_000 });
  }

  /** Removes one stored message (ending its delivery too). False when it was already gone. */
  async messageDelete(stream: string, seq: number): Promise<boolean> {
    try {
      return await whileUnavailable(() => this.jsm.streams.deleteMessage(stream, seq, false));
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === MSG_DELETE_FAILED) return false;
      throw err;
    }
  }

  async messageGet(
    stream: string,
    query: { seq: number } | { last_by_subj: string } | { seq: number; next_by_subj: string },
  ): Promise<StoredMsg | null> {
    try {
      return await whileUnavailable(() => this.jsm.streams.getMessage(stream, query));
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === NO_MESSAGE_FOUND) return null;
      throw err;
    }
  }

  async messagePublish(
    subject: string,
    data: Uint8Array | string,
    o: { envelope?: Envelope; dedupeId?: string },
  ): Promise<PubAck> {
    return this.js.publish(subject, data, {
      ...(o.envelope === undefined ? {} : { headers: envelopeHeaders(o.envelope) }),
      ...(o.dedupeId === undefined ? {} : { msgID: o.dedupeId }),
    });
  }

  /** The last error recorded on a live message, or null. */
  async errorGet(q: QueueNames, id: string): Promise<string | null> {
    const m = await this.messageGet(q.errorStream, { last_by_subj: q.error(id) });
    return m === null || m.data.length === 0 ? null : m.string();
  }

  async errorPut(q: QueueNames, id: string, error: string): Promise<void> {
    await this.js.publish(q.error(id), error);
  }

  async errorClear(q: QueueNames, id: string): Promise<void> {
    await whileUnavailable(() => this.jsm.streams.purge(q.errorStream, { filter: q.error(id) }));
  }

  /**
   * Ready, in-flight and delayed counts of a queue. In flight is what the
   * stream holds on ready less what its consumer has yet to deliver: exact
   * even after a crash left the consumer remembering deliveries of messages
   * acked meanwhile (their deletes ended them).
   */
  async queueCounts(q: QueueNames): Promise<{ ready: number; inFlight: number; delayed: number }> {
    const [consumer, stream] = await Promise.all([
      whileUnavailable(() => this.jsm.consumers.info(q.stream, q.consumer)),
      whileUnavailable(() => this.jsm.streams.info(q.stream, { subjects_filter: q.subjects })),
    ]);
    const stored = stream.state.subjects ?? {};
    const ready = consumer.num_pending;
    return {
      ready,
      inFlight: Math.max(0, (stored[q.ready] ?? 0) - ready),
      delayed: stored[q.delayed] ?? 0,
    };
  }

  /** How many dead letters a queue has. */
  async deadCount(q: QueueNames): Promise<number> {
    return (await whileUnavailable(() => this.jsm.streams.info(q.dlqStream))).state.messages;
  }
}
