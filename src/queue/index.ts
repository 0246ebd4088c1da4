import * as v from "valibot";
import {
  dlqName,
  QUEUE_NAMES,
  QUEUES,
  type QueueName,
  type QueuePayload,
} from "../contracts/queue";
import type { Db } from "../db/connect";
import { Coalescer, coalescerFor } from "./coalesce";
import {
  type Depth,
  type MessageRow,
  messagesDeadLetter,
  messagesDeleteIds,
  messagesDepth,
  messagesInsert,
  messagesListDead,
  messagesReceive,
  messagesRecordError,
  messagesRedrive,
  messagesSetVisibility,
} from "./sql";

/**
 * pgqueue: a queue on `state.queue_messages` with SQS semantics (invariant 1).
 * Payloads are checked against the queue's contract on publish and receive;
 * a message whose payload fails the contract is dead-lettered, never delivered.
 */

export interface Message<Q extends QueueName> {
  id: string;
  queue: Q;
  payload: QueuePayload<Q>;
  receiveCount: number;
  lastError: string | null;
  createdAt: Date;
}

export interface PublishOptions {
  availableAt?: Date;
  delayMs?: number;
}

function checkPayload<Q extends QueueName>(queue: Q, payload: unknown): QueuePayload<Q> {
  const result = v.safeParse(QUEUES[queue], payload);
  if (!result.success) {
    throw new Error(
      `payload for queue ${queue} breaks its contract: ${v.summarize(result.issues)}`,
    );
  }
  return result.output;
}

export async function publishBatch<Q extends QueueName>(
  db: Db,
  queue: Q,
  payloads: readonly QueuePayload<Q>[],
  options: PublishOptions = {},
): Promise<string[]> {
  const checked = payloads.map((p) => checkPayload(queue, p));
  try {
    return await messagesInsert(db, { queue, payloads: checked, ...options });
  } catch (cause) {
    throw new Error(`publishing ${payloads.length} message(s) to ${queue}`, { cause });
  }
}

export async function publish<Q extends QueueName>(
  db: Db,
  queue: Q,
  payload: QueuePayload<Q>,
  options: PublishOptions = {},
): Promise<string> {
  const [id] = await publishBatch(db, queue, [payload], options);
  if (id === undefined) throw new Error(`publishing to ${queue} returned no id`);
  return id;
}

export interface ReceiveOptions {
  max: number;
  visibilityTimeoutMs: number;
  maxReceives: number;
}

/**
 * Concurrent receives (and acks) on one handle are merged into one statement
 * while another is in flight (./coalesce.ts): the same SKIP LOCKED receive,
 * its rows handed out in id order, each caller getting at most its `max`.
 */
const RECEIVE_IN_FLIGHT = 2;
const RECEIVE_MERGED_MAX = 500;
const DELETE_IN_FLIGHT = 2;
const DELETE_MERGED_MAX = 1000;

const receivers = new WeakMap<object, Map<string, Coalescer<number, MessageRow[]>>>();
const deleters = new WeakMap<object, Map<string, Coalescer<readonly string[], number>>>();

function receiveRows(db: Db, queue: QueueName, options: ReceiveOptions): Promise<MessageRow[]> {
  const { visibilityTimeoutMs, maxReceives } = options;
  const key = `${queue}|${visibilityTimeoutMs}|${maxReceives}`;
  const coalescer = coalescerFor(receivers, db, key, () => {
    return new Coalescer<number, MessageRow[]>({
      run: async (maxes) => {
        const max = maxes.reduce((sum, m) => sum + m, 0);
        const rows = await messagesReceive(db, {
          queue,
          dlq: dlqName(queue),
          max,
          visibilityTimeoutMs,
          maxReceives,
        });
        let at = 0;
        return maxes.map((m) => {
          const part = rows.slice(at, at + m);
          at += m;
          return part;
        });
      },
      weight: (max) => max,
      maxWeight: RECEIVE_MERGED_MAX,
      maxInFlight: RECEIVE_IN_FLIGHT,
    });
  });
  return coalescer.submit(Math.max(0, Math.floor(options.max)));
}

/** Deletes ids; an id listed by two merged calls counts for the first one only. */
function deleteIds(db: Db, ids: readonly string[]): Promise<number> {
  const coalescer = coalescerFor(deleters, db, "", () => {
    return new Coalescer<readonly string[], number>({
      run: async (lists) => {
        const gone = new Set(await messagesDeleteIds(db, lists.flat()));
        return lists.map((list) => {
          let n = 0;
          for (const id of list) if (gone.delete(id)) n++;
          return n;
        });
      },
      weight: (list) => list.length,
      maxWeight: DELETE_MERGED_MAX,
      maxInFlight: DELETE_IN_FLIGHT,
    });
  });
  return coalescer.submit(ids);
}

export async function receive<Q extends QueueName>(
  db: Db,
  queue: Q,
  options: ReceiveOptions,
): Promise<Message<Q>[]> {
  let rows: MessageRow[];
  try {
    rows = await receiveRows(db, queue, options);
  } catch (cause) {
    throw new Error(`receiving from ${queue}`, { cause });
  }
  const messages: Message<Q>[] = [];
  for (const row of rows) {
    const parsed = v.safeParse(QUEUES[queue], row.payload);
    if (!parsed.success) {
      const reason = `payload breaks the ${queue} contract: ${v.summarize(parsed.issues)}`;
      await messagesDeadLetter(db, { id: row.id, dlq: dlqName(queue), error: reason });
      continue;
    }
    messages.push({
      id: row.id,
      queue,
      payload: parsed.output,
      receiveCount: row.receive_count,
      lastError: row.last_error,
      createdAt: row.created_at,
    });
  }
  return messages;
}

export async function ack(db: Db, id: string): Promise<boolean> {
  return (await deleteIds(db, [id])) === 1;
}

export async function ackBatch(db: Db, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return deleteIds(db, ids);
}

/** Keeps a received message hidden until `until` (absolute) or for `visibilityTimeoutMs` more. */
export async function extendVisibility(
  db: Db,
  id: string,
  until: Date | { visibilityTimeoutMs: number },
): Promise<boolean> {
  return until instanceof Date
    ? messagesSetVisibility(db, { id, until })
    : messagesSetVisibility(db, { id, visibilityTimeoutMs: until.visibilityTimeoutMs });
}

/** Leaves a message to come back after its visibility timeout, noting why it failed. */
export async function recordError(db: Db, id: string, error: string): Promise<void> {
  await messagesRecordError(db, id, error);
}

export async function deadLetter(
  db: Db,
  queue: QueueName,
  id: string,
  error: string,
): Promise<boolean> {
  return messagesDeadLetter(db, { id, dlq: dlqName(queue), error });
}

export async function listDeadLetters(
  db: Db,
  queues: readonly QueueName[] = QUEUE_NAMES,
  limit = 1000,
): Promise<Array<MessageRow & { queue: QueueName }>> {
  const byDlq = new Map(queues.map((q) => [dlqName(q), q]));
  const rows = await messagesListDead(db, { dlqs: [...byDlq.keys()], limit });
  return rows.flatMap((row) => {
    const queue = byDlq.get(row.queue_name);
    return queue === undefined ? [] : [{ ...row, queue }];
  });
}

export async function redrive(db: Db, queue: QueueName, id?: string): Promise<number> {
  return messagesRedrive(db, { dlq: dlqName(queue), queue, ...(id === undefined ? {} : { id }) });
}

export interface QueueDepth extends Depth {
  queue: QueueName;
  dead: number;
}

export async function depths(db: Db): Promise<QueueDepth[]> {
  const all = await messagesDepth(db);
  const zero: Depth = { ready: 0, inFlight: 0, delayed: 0 };
  return QUEUE_NAMES.map((queue) => {
    const live = all.get(queue) ?? zero;
    const dead = all.get(dlqName(queue)) ?? zero;
    return { queue, ...live, dead: dead.ready + dead.inFlight + dead.delayed };
  });
}
