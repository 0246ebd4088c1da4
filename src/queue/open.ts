import { type Config, requireStateDatabase } from "../config";
import { NatsQueue } from "./nats/backend";
import { PgQueue } from "./pg/backend";
import type { QueueBackend } from "./seam";

/**
 * The queue backend the configuration chooses: pgqueue in the STATE database
 * when QUEUE_URL is unset, NATS JetStream for `nats://…`. `name` labels the
 * role's connections; `connections` sizes pgqueue's pool.
 */
export async function openQueue(
  cfg: Config,
  o: { name: string; connections?: number },
): Promise<QueueBackend> {
  if (cfg.queue.url !== undefined) {
    return NatsQueue.open({ url: cfg.queue.url, namespace: cfg.queue.namespace, name: o.name });
  }
  return PgQueue.open(requireStateDatabase(cfg), o);
}
