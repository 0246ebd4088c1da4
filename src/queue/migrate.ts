import type { Config } from "../config";
import { NatsQueue } from "./nats/backend";

/**
 * The queue side of `harness migrate`: nothing for pgqueue (its table is in
 * the state migrations); on NATS, creates or updates the namespace's streams
 * and consumers (idempotent, two at once are safe). Returns the line that
 * reports it, or undefined when there is nothing to do.
 */
export async function migrateQueues(cfg: Config): Promise<string | undefined> {
  if (cfg.queue.url === undefined) return undefined;
  const nats = await NatsQueue.open({
    url: cfg.queue.url,
    namespace: cfg.queue.namespace,
    name: "migrate",
  });
  try {
    const changes = await nats.ensure({ visibilityTimeoutMs: cfg.visibilityTimeoutMs });
    return `queues (${nats.describe()}): ${changes.length ? changes.join(", ") : "up to date"}`;
  } finally {
    await nats.close();
  }
}
