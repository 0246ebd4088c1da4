import { migrateAll } from "../db/migrator";
import { harnessCommand } from "./_command";

export default harnessCommand({
  name: "migrate",
  description: "Apply the embedded migrations to the state and data databases (idempotent)",
  args: {},
  checks: { databases: ["state", "data"], schema: false, oneShot: true },
  async run() {
    for (const report of await migrateAll()) {
      const what = report.applied.length ? `applied ${report.applied.join(", ")}` : "up to date";
      process.stdout.write(`${report.set} (${report.database}): ${what}\n`);
    }
  },
});
