import { type Config, requireStateDatabase } from "../config";
import { NatsQueue } from "./nats/backend";
import { PgQueue, type PgQueueOptions } from "./pg/backend";
import type { QueueBackend } from "./seam";

/**
 * The queue backend the configuration chooses: pgqueue in the STATE database
 * when QUEUE_URL is unset, NATS JetStream for `nats://…`. `name` labels the
 * role's connections; `connections` sizes pgqueue's pool; `ackLingerMs` is
 * for a role that acks in the background (NATS acks each message alone).
 */
export async function openQueue(cfg: Config, o: PgQueueOptions): Promise<QueueBackend> {
  if (cfg.queue.url !== undefined) {
    return NatsQueue.open({ url: cfg.queue.url, namespace: cfg.queue.namespace, name: o.name });
  }
  return PgQueue.open(requireStateDatabase(cfg), o);
}
