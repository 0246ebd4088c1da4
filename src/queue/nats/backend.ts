import type { StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { QueueName } from "../../contracts/queue";
import type { ConsumerOptions, QueueAdmin, QueueBackend } from "../seam";
import { NatsAdmin } from "./admin";
import { describeNatsUrl, inboxPrefixFor, openNats, parseNatsUrl } from "./connect";
import { NatsConsumer } from "./consumer";
import { dropQueues, type EnsureOptions, ensureQueues } from "./ensure";
import { DEFAULT_NAMESPACE, type Names, namesFor } from "./names";
import { Promoter } from "./promoter";
import { NatsPublisher } from "./publisher";
import { ReadySignal } from "./signal";
import { isMissingResource, Store } from "./store";

/**
 * The queues on NATS JetStream (`QUEUE_URL=nats://…`): the same seam and
 * semantics as pgqueue (invariant 1), on streams and durable pull consumers
 * named after QUEUE_NAMESPACE (./names.ts). The streams are created by
 * `ensure` (the NATS side of `harness migrate`); a role only opens them.
 * One connection per backend, which reconnects by itself.
 */

export interface NatsQueueOptions {
  /** `nats://[user:pass@]host:port[,host:port…]` */
  url: string;
  namespace?: string;
  /** The connection's name on the server: `harness-<name>`. */
  name: string;
}

export class NatsQueue implements QueueBackend {
  readonly kind = "nats";
  private readonly promoters = new Map<QueueName, Promoter>();
  private readonly signals = new Map<QueueName, ReadySignal>();
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly store: Store,
    readonly names: Names,
    private readonly where: string,
  ) {}

  static async open(o: NatsQueueOptions): Promise<NatsQueue> {
    const names = namesFor(o.namespace ?? DEFAULT_NAMESPACE);
    const nc = await openNats(o.url, o.name);
    const store = await Store.open(nc, inboxPrefixFor(parseNatsUrl(o.url)));
    return new NatsQueue(nc, store, names, describeNatsUrl(o.url));
  }

  async consumer<Q extends QueueName>(
    queue: Q,
    options: ConsumerOptions,
  ): Promise<NatsConsumer<Q>> {
    if (this.closed !== undefined) throw new Error("the queue is closed");
    const q = this.names.of(queue);
    let ackWaitNanos: number | undefined;
    try {
      ackWaitNanos = (await this.store.jsm.consumers.info(q.stream, q.consumer)).config.ack_wait;
    } catch (cause) {
      const why = isMissingResource(cause)
        ? `no stream ${q.stream} with consumer ${q.consumer} at ${this.where}: run harness migrate with this QUEUE_URL and QUEUE_NAMESPACE`
        : `opening queue ${queue} at ${this.where}`;
      throw new Error(why, { cause });
    }
    if (!this.promoters.has(queue)) this.promoters.set(queue, new Promoter(this.store, q));
    let signal = this.signals.get(queue);
    if (signal === undefined) {
      signal = new ReadySignal(this.nc, q.ready);
      this.signals.set(queue, signal);
    }
    return new NatsConsumer(
      this.store,
      q,
      options,
      Math.round((ackWaitNanos ?? 30e9) / 1e6),
      signal,
    );
  }

  /** The broker publishes at once: a transaction handle is not used. */
  publisher(): NatsPublisher {
    return new NatsPublisher(this.store, this.names);
  }

  admin(): QueueAdmin {
    return new NatsAdmin(this.store, this.names);
  }

  /**
   * Creates or updates the namespace's streams and consumers (owner only).
   * Replicas default to 3 on a cluster of three or more servers, else 1.
   */
  async ensure(
    o: Pick<EnsureOptions, "visibilityTimeoutMs"> & Partial<EnsureOptions>,
  ): Promise<string[]> {
    const servers = this.nc.info?.connect_urls?.length ?? 1;
    const replicas = o.replicas ?? (servers >= 3 ? 3 : 1);
    return ensureQueues(this.store.jsm, this.names, { ...o, replicas });
  }

  /** Where it is connected (credentials left out) and its namespace: for messages. */
  describe(): string {
    return `NATS at ${this.where}, namespace ${this.names.namespace}`;
  }

  /** The queue's work stream as the broker sees it (replicas, cluster leader, state). */
  streamInfo(queue: QueueName): Promise<StreamInfo> {
    return this.store.jsm.streams.info(this.names.of(queue).stream);
  }

  /** Empties the namespace's streams, consumers' in-flight deliveries included: for tests. */
  async purge(): Promise<void> {
    for (const stream of this.names.streams()) await this.store.jsm.streams.purge(stream);
  }

  /** Deletes the namespace's streams: for tests and teardown. */
  async drop(): Promise<void> {
    await dropQueues(this.store.jsm, this.names);
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      for (const signal of this.signals.values()) signal.close();
      await Promise.all([...this.promoters.values()].map((p) => p.stop()));
      await this.nc.drain().catch(() => this.nc.close());
    })();
    return this.closed;
  }
}
