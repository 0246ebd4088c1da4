import type { QueueName } from "../../contracts/queue";
import { connect, type Db, describeUrl, type Sql } from "../../db/connect";
import type { ConsumerOptions, QueueAdmin, QueueBackend, QueuePublisher } from "../seam";
import { pgAdmin } from "./admin";
import { PgConsumer } from "./consumer";
import { pgPublisher } from "./publisher";
import { listenQueues, type QueueSignal } from "./signal";

/**
 * pgqueue: queues on `state.queue_messages` in the STATE database, with SQS
 * semantics (invariant 1). The backend holds its own pool, and one LISTEN
 * connection shared by its consumers' long polls (opened by the first
 * `consumer`, which fails there when the database cannot be reached).
 */

export interface PgQueueOptions {
  /** Shown in pg_stat_activity as `harness-<name>`. */
  name: string;
  /** Pool size: keep the queries a role has in flight at or below it. */
  connections?: number;
  /** How long an ack waits for others to share its statement (./consumer.ts); 0, the default: none. */
  ackLingerMs?: number;
}

export class PgQueue implements QueueBackend {
  readonly kind = "pgqueue";
  #signal: Promise<QueueSignal> | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly sql: Sql,
    private readonly where: string,
    private readonly ackLingerMs: number,
  ) {}

  /** Opens a pool on the STATE database at `url`. */
  static open(url: string, o: PgQueueOptions): PgQueue {
    const sql = connect(url, { name: o.name, max: o.connections ?? 4 });
    return new PgQueue(sql, describeUrl(url), o.ackLingerMs ?? 0);
  }

  async consumer<Q extends QueueName>(queue: Q, options: ConsumerOptions): Promise<PgConsumer<Q>> {
    const signal = await this.#listen();
    return new PgConsumer(queue, options, { db: this.sql, signal, ackLingerMs: this.ackLingerMs });
  }

  publisher(tx?: Db): QueuePublisher {
    return pgPublisher(tx ?? this.sql);
  }

  admin(): QueueAdmin {
    return pgAdmin(this.sql);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const signal = await this.#signal?.catch(() => undefined);
      await signal?.close().catch(() => {});
      await this.sql.end({ timeout: 5 });
    })();
    return this.#closed;
  }

  #listen(): Promise<QueueSignal> {
    if (this.#closed !== undefined) return Promise.reject(new Error("the queue is closed"));
    this.#signal ??= listenQueues(this.sql).catch((cause: unknown) => {
      this.#signal = undefined;
      throw new Error(`cannot reach the state database at ${this.where}`, { cause });
    });
    return this.#signal;
  }
}
