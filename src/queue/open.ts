import { type Config, ConfigError, requireStateDatabase } from "../config";
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
    throw new ConfigError(
      `QUEUE_URL ${cfg.queue.url}: the NATS backend is not built into this version yet (unset QUEUE_URL for pgqueue)`,
    );
  }
  return PgQueue.open(requireStateDatabase(cfg), o);
}
