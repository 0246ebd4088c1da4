import { config } from "../config";
import { migrateAll } from "../db/migrator";
import { migrateQueues } from "../queue/migrate";
import { harnessCommand } from "./_command";

export default harnessCommand({
  name: "migrate",
  description:
    "Apply the embedded migrations to the state and data databases, and create the queue streams on NATS when QUEUE_URL is set (idempotent)",
  args: {},
  checks: { databases: ["state", "data"], schema: false, oneShot: true },
  async run() {
    for (const report of await migrateAll()) {
      const what = report.applied.length ? `applied ${report.applied.join(", ")}` : "up to date";
      process.stdout.write(`${report.set} (${report.database}): ${what}\n`);
    }
    const queues = await migrateQueues(config());
    if (queues !== undefined) process.stdout.write(`${queues}\n`);
  },
});
