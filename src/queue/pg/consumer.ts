import { Coalescer } from "../../coalesce";
import type { QueueName } from "../../contracts/queue";
import type { Db } from "../../db/connect";
import { checkIncoming } from "../contract";
import type { ConsumerOptions, Depth, Message, QueueConsumer } from "../seam";
import type { QueueSignal } from "./signal";
import {
  type MessageRow,
  messagesAckThenReceive,
  messagesDeadLetter,
  messagesDepthOf,
  messagesRecordError,
  messagesSetVisibility,
} from "./sql";

/**
 * One queue of pgqueue, from the receiving side (invariant 1). A consumer's
 * calls made while its last statement runs are merged into the next one
 * (../../coalesce.ts), receives and acks alike: its acks first, then one
 * SKIP LOCKED receive whose rows are handed out in id order, each caller
 * getting at most its `max` (messagesAckThenReceive). One statement at a
 * time, and each holds its place until the callers it answered have made
 * their next calls: a worker's slots ack what they received and receive
 * again, and all of them then share one statement and one commit, where
 * separate receives and acks (one of each in flight) met out of step.
 * A backend opened with `ackLingerMs` (a role that acks in the background,
 * src/background.ts) lets an ack wait that long for company, and a receive
 * takes it along at once: acks come one at a time as tasks end, an ack in
 * hand is already safe (the message stays hidden until it goes), and one
 * commit for several is what pays. Every call is one of the queue's SQL
 * functions, for this queue only.
 */

/**
 * Receives asked for plus ids acked in one statement, at most (a call
 * larger alone still runs alone). A second statement runs beside the
 * first only while a full one is waiting. On the bench VM, in alternating
 * runs of the queue workloads' loop (20,000 messages, 10 consumers):
 * 7,550-8,100 msgs/s with one message per receive, against 4,900-5,140
 * with receives and acks in separate statements, one of each in flight.
 * With receives of 100 it costs about 6 %: 63,500-68,900 against
 * 69,700-71,800, as a statement's acks and receive run one after the other
 * in one backend where the two statements ran side by side; without the
 * second statement when full, 57,500-60,400 against 64,700-68,400.
 */
const MERGED_MAX = 500;

/** One call of a consumer: a receive of up to `max` messages, or an ack of `ids`. */
type Call = { max: number; ids?: undefined } | { ids: readonly string[]; max?: undefined };
interface Answer {
  received: MessageRow[];
  acked: number;
}

export interface PgConsumerDeps {
  db: Db;
  signal: QueueSignal;
  /** How long an ack waits for others to share its statement (0: none). */
  ackLingerMs: number;
}

export class PgConsumer<Q extends QueueName> implements QueueConsumer<Q> {
  readonly #calls: Coalescer<Call, Answer>;

  constructor(
    readonly queue: Q,
    private readonly options: ConsumerOptions,
    private readonly deps: PgConsumerDeps,
  ) {
    this.#calls = new Coalescer<Call, Answer>({
      run: (calls) => this.#runMerged(calls),
      weight: (call) => call.max ?? call.ids.length,
      maxWeight: MERGED_MAX,
      maxInFlight: 1,
      maxInFlightWhenFull: 2,
      lingerMs: deps.ackLingerMs,
      lingers: (call) => call.ids !== undefined,
      gather: true,
    });
  }

  /** An id listed by two merged acks counts for the first one only. */
  async #runMerged(calls: Call[]): Promise<Answer[]> {
    const { acked, received } = await messagesAckThenReceive(this.deps.db, {
      queue: this.queue,
      ids: calls.flatMap((call) => call.ids ?? []),
      max: calls.reduce((sum, call) => sum + (call.max ?? 0), 0),
      visibilityTimeoutMs: this.options.visibilityTimeoutMs,
      maxReceives: this.options.maxReceives,
    });
    const gone = new Set(acked);
    let at = 0;
    return calls.map((call) => {
      if (call.ids !== undefined) {
        let n = 0;
        for (const id of call.ids) if (gone.delete(id)) n++;
        return { received: [], acked: n };
      }
      const part = received.slice(at, at + call.max);
      at += call.max;
      return { received: part, acked: 0 };
    });
  }

  async receive(max: number): Promise<Message<Q>[]> {
    let rows: MessageRow[];
    try {
      ({ received: rows } = await this.#calls.submit({ max: Math.max(0, Math.floor(max)) }));
    } catch (cause) {
      throw new Error(`receiving from ${this.queue}`, { cause });
    }
    const messages: Message<Q>[] = [];
    for (const row of rows) {
      const checked = checkIncoming(this.queue, row.payload);
      if (!checked.ok) {
        await this.#moveToDlq(row.id, checked.reason);
        continue;
      }
      messages.push({
        id: row.id,
        queue: this.queue,
        payload: checked.payload,
        receiveCount: row.receive_count,
        lastError: row.last_error,
        createdAt: row.created_at,
      });
    }
    return messages;
  }

  async ack(m: Message<Q>): Promise<boolean> {
    return (await this.ackBatch([m])) === 1;
  }

  async ackBatch(messages: readonly Message<Q>[]): Promise<number> {
    if (messages.length === 0) return 0;
    try {
      return (await this.#calls.submit({ ids: messages.map((m) => m.id) })).acked;
    } catch (cause) {
      throw new Error(`acking ${messages.length} message(s) of ${this.queue}`, { cause });
    }
  }

  extendVisibility(m: Message<Q>, until: Date | { visibilityTimeoutMs: number }) {
    const to =
      until instanceof Date ? { until } : { visibilityTimeoutMs: until.visibilityTimeoutMs };
    return this.#run(`extending the visibility of message ${m.id}`, () =>
      messagesSetVisibility(this.deps.db, { queue: this.queue, id: m.id, ...to }),
    );
  }

  recordError(m: Message<Q>, error: string): Promise<void> {
    return this.#run(`recording an error on message ${m.id}`, () =>
      messagesRecordError(this.deps.db, { queue: this.queue, id: m.id, error }),
    );
  }

  deadLetter(m: Message<Q>, error: string): Promise<boolean> {
    return this.#moveToDlq(m.id, error);
  }

  wait(timeoutMs: number, abort?: AbortSignal): Promise<void> {
    return this.deps.signal.wait(this.queue, timeoutMs, abort);
  }

  async depth(): Promise<Depth> {
    return this.#run("counting the messages", () =>
      messagesDepthOf(this.deps.db, { queue: this.queue }),
    );
  }

  #moveToDlq(id: string, error: string): Promise<boolean> {
    return this.#run(`dead-lettering message ${id}`, () =>
      messagesDeadLetter(this.deps.db, { queue: this.queue, id, error }),
    );
  }

  async #run<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (cause) {
      throw new Error(`${what} of ${this.queue}`, { cause });
    }
  }
}
