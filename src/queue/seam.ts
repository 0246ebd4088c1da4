import type { QueueName, QueuePayload } from "../contracts/queue";
import type { Db } from "../db/connect";

/**
 * The queue seam (River's driver interface): what a role may do with a
 * queue, and nothing else. A role receives the narrowest piece it needs —
 * the worker a `QueueConsumer<"task_wakeup">`, the sink a
 * `QueueConsumer<"buffer_queue">`, the drainer a `QueuePublisher`, status
 * and dlq a `QueueAdmin` — never a database handle. Two backends implement
 * it: pgqueue (`state.queue_messages`, the default) and NATS JetStream
 * (`QUEUE_URL=nats://…`), and one shared adapter suite holds both to the
 * same semantics (invariant 1).
 */

/**
 * A backend's refusal of a message that no retry can change: its payload
 * breaks its queue's contract, or the broker will never take it (too large).
 * The outbox drainer marks such a row `rejected` instead of retrying it.
 */
export class MessageRefusedError extends Error {
  override name = "MessageRefusedError";
}

/** A received message. `id` is the backend's (a row id, a stream sequence). */
export interface Message<Q extends QueueName> {
  id: string;
  queue: Q;
  payload: QueuePayload<Q>;
  /** Deliveries so far, this one included. */
  receiveCount: number;
  lastError: string | null;
  createdAt: Date;
}

export interface Outgoing<Q extends QueueName> {
  payload: QueuePayload<Q>;
  /** Hidden until this time (absolute; decided by the clock that issued it). */
  availableAt?: Date;
  /**
   * Where the backend can, a repeat with the same id is dropped (NATS:
   * `Nats-Msg-Id` within the stream's duplicate window). The outbox drainer
   * passes one per outbox row, unique across the database's lifetimes
   * (`outboxDedupeId`).
   */
  dedupeId?: string;
}

export interface ConsumerOptions {
  visibilityTimeoutMs: number;
  /** A message received this many times goes to `<queue>.dlq` instead, keeping its last error. */
  maxReceives: number;
}

export interface Depth {
  /** Visible now. */
  ready: number;
  /** Received and hidden until their visibility timeout. */
  inFlight: number;
  /** Never received yet, published with a future `availableAt`. */
  delayed: number;
}

export interface QueueDepth extends Depth {
  queue: QueueName;
  dead: number;
}

export interface DeadLetter {
  id: string;
  queue: QueueName;
  /** As stored: a dead letter may be one whose payload broke its contract. */
  payload: unknown;
  receiveCount: number;
  lastError: string | null;
  createdAt: Date;
}

/** One queue, from the receiving side. */
export interface QueueConsumer<Q extends QueueName> {
  readonly queue: Q;
  /**
   * Up to `max` visible messages, each hidden from every other receiver for
   * the visibility timeout and counted as one more receive. A message whose
   * payload breaks the queue's contract is dead-lettered, never returned.
   */
  receive(max: number): Promise<Message<Q>[]>;
  /** Done with: it never reappears. False when it was already gone. */
  ack(m: Message<Q>): Promise<boolean>;
  /** `ack` for many at once (one statement where the backend can); how many were still there. */
  ackBatch(messages: readonly Message<Q>[]): Promise<number>;
  /**
   * Keeps a received message hidden until `until`, or for `visibilityTimeoutMs`
   * more (0: visible again now). False when it is gone (acked, dead-lettered).
   */
  extendVisibility(m: Message<Q>, until: Date | { visibilityTimeoutMs: number }): Promise<boolean>;
  /** Notes why handling failed; the message comes back after its visibility timeout. */
  recordError(m: Message<Q>, error: string): Promise<void>;
  /** Moves the message to `<queue>.dlq` now, with the reason. */
  deadLetter(m: Message<Q>, error: string): Promise<boolean>;
  /**
   * Resolves on a publish to this queue, after `timeoutMs`, or when `abort`
   * fires (never rejects). It listens from the moment it is called: call it
   * before a `receive` that may come back empty, so a publish in between is
   * not missed.
   */
  wait(timeoutMs: number, abort?: AbortSignal): Promise<void>;
  /** This queue's messages (not its dead letters): for `--until-idle`. */
  depth(): Promise<Depth>;
}

export interface QueuePublisher {
  /**
   * Publishes each message, checked against the queue's contract first (one
   * that breaks it fails the whole call, publishing nothing). Returns the
   * messages' ids in order: what `Message.id` and `DeadLetter.id` will say.
   */
  publish<Q extends QueueName>(queue: Q, messages: readonly Outgoing<Q>[]): Promise<string[]>;
}

/** What operators see and do: depths for `status`, dead letters for `dlq` and the dashboard. */
export interface QueueAdmin {
  depths(): Promise<QueueDepth[]>;
  listDeadLetters(p: { queues?: readonly QueueName[]; limit?: number }): Promise<DeadLetter[]>;
  /** Moves dead letters (all of a queue's, or one) back, visible now, with a fresh receive count. */
  redrive(p: { queue: QueueName; id?: string }): Promise<number>;
}

export interface QueueBackend {
  readonly kind: "pgqueue" | "nats";
  /** One queue's consumer; rejects when the backend cannot be reached (checked here, at start). */
  consumer<Q extends QueueName>(queue: Q, options: ConsumerOptions): Promise<QueueConsumer<Q>>;
  /**
   * A publisher. pgqueue publishes inside `tx` when one is given (atomic with
   * the caller's writes, as the outbox drainer wants); a broker publishes at
   * once and ignores it.
   */
  publisher(tx?: Db): QueuePublisher;
  admin(): QueueAdmin;
  /** Ends every consumer's waits and closes the backend's connections. */
  close(): Promise<void>;
}
