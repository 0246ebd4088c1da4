import type { StoredMsg } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import { createLogger } from "../../log";
import { parseAckSubject, readEnvelope } from "./envelope";
import type { QueueNames } from "./names";
import type { Store } from "./store";

const log = createLogger("queue");

/**
 * One received copy of a queue message, as the backend needs it to ack,
 * extend, note an error on or dead-letter it: where it is stored (`seq`),
 * where to answer the server (`reply`), and its bytes for a dead letter.
 */
export interface Delivery {
  id: string;
  seq: number;
  /** The ack subject; absent when the message was not received here. */
  reply?: string;
  data: Uint8Array;
  createdAt: number;
  receiveCount: number;
  lastError: string | null;
  /** An entry may exist in the queue's error stream, to clear once the message is gone. */
  hasErrorEntry: boolean;
  /**
   * Epoch ms until which this delivery is surely still this receiver's
   * alone (measured from before the pull or the extension, so never later
   * than the server's own deadline); 0 when not received here.
   */
  hiddenUntil: number;
  /** Acked or dead-lettered through this delivery already. */
  settled: boolean;
}

/** Whether the delivery is surely still held here: nobody else can have acked or moved it. */
export function deliveryHeld(d: Delivery): d is Delivery & { reply: string } {
  return d.reply !== undefined && !d.settled && Date.now() < d.hiddenUntil;
}

/** A pulled message, hidden until `hiddenUntil`; undefined when its reply is not a JetStream ack subject. */
export function deliveryOf(m: Msg, hiddenUntil: number): Delivery | undefined {
  const info = parseAckSubject(m.reply);
  if (info === undefined || m.reply === undefined) return undefined;
  const env = readEnvelope(m.headers);
  return {
    id: env.id ?? String(info.streamSeq),
    seq: info.streamSeq,
    reply: m.reply,
    data: m.data,
    createdAt: env.createdAt ?? info.storedAt,
    receiveCount: info.deliveryCount,
    lastError: env.lastError ?? null,
    hasErrorEntry: false,
    hiddenUntil,
    settled: false,
  };
}

/** A stored message looked up by sequence (a message this process did not receive). */
export function deliveryStored(m: StoredMsg): Delivery {
  const env = readEnvelope(m.header);
  return {
    id: env.id ?? String(m.seq),
    seq: m.seq,
    data: m.data,
    createdAt: env.createdAt ?? m.time.getTime(),
    receiveCount: 0,
    lastError: env.lastError ?? null,
    hasErrorEntry: true,
    hiddenUntil: 0,
    settled: false,
  };
}

/**
 * Copies a message to `<queue>.dlq` with the reason, then removes it from
 * the queue. A copy whose original turned out to be gone already is taken
 * back (unless it was another mover's: the same `dlq:<seq>` id made it a
 * duplicate), so a message is dead-lettered once or not at all. A
 * delivery no longer surely held is first looked up: another receiver may
 * have acked it since.
 */
export async function deliveryDeadLetter(
  store: Store,
  q: QueueNames,
  d: Delivery,
  reason: string,
  receiveCount: number,
): Promise<boolean> {
  if (d.settled) return false;
  if (!deliveryHeld(d) && (await store.messageGet(q.stream, { seq: d.seq })) === null) {
    return false;
  }
  const copy = await store.messagePublish(q.dlq(d.id), d.data, {
    envelope: { id: d.id, createdAt: d.createdAt, lastError: reason, receiveCount },
    dedupeId: `dlq:${d.seq}`,
  });
  const removed = await store.messageDelete(q.stream, d.seq);
  d.settled = true;
  if (!removed && !copy.duplicate) {
    // Best effort: a role's broker user may not delete dead letters (deploy/nats/).
    await store.messageDelete(q.dlqStream, copy.seq).catch((err: unknown) => {
      log.warn("a dead letter of a message acked meanwhile remains", {
        queue: q.queue,
        message_id: d.id,
        err,
      });
    });
  }
  if (removed) await deliveryForgetError(store, q, d);
  return removed;
}

/** Clears the message's entry in the error stream, if it may have one (best effort). */
export async function deliveryForgetError(store: Store, q: QueueNames, d: Delivery): Promise<void> {
  if (!d.hasErrorEntry) return;
  await store.errorClear(q, d.id).catch(() => undefined);
}
