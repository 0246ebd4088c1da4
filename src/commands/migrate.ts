import { config } from "../config";
import { migrateAll } from "../db/migrator";
import { NatsQueue } from "../queue/nats/backend";
import { harnessCommand } from "./_command";

export default harnessCommand({
  name: "migrate",
  description:
    "Apply the embedded migrations to the state and data databases, and create the queue streams on NATS when QUEUE_URL is set (idempotent)",
  args: {},
  async run() {
    for (const report of await migrateAll()) {
      const what = report.applied.length ? `applied ${report.applied.join(", ")}` : "up to date";
      process.stdout.write(`${report.set} (${report.database}): ${what}\n`);
    }
    const cfg = config();
    if (cfg.queue.url === undefined) return;
    const nats = await NatsQueue.open({
      url: cfg.queue.url,
      namespace: cfg.queue.namespace,
      name: "migrate",
    });
    try {
      const changes = await nats.ensure({ visibilityTimeoutMs: cfg.visibilityTimeoutMs });
      const what = changes.length ? changes.join(", ") : "up to date";
      process.stdout.write(`queues (${nats.describe()}): ${what}\n`);
    } finally {
      await nats.close();
    }
  },
});
