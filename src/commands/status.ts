import { config, requireDataDatabase, requireStateDatabase } from "../config";
import { connect } from "../db/connect";
import { isMissingMigration } from "../db/errors";
import { collectStatus, formatStatus } from "../dispatcher/status";
import { harnessCommand } from "./_command";

export default harnessCommand({
  name: "status",
  description:
    "Tasks by status, queue depths (ready / in-flight / dead), pending outbox rows, alert rows",
  args: {
    json: { type: "boolean", description: "print one JSON object" },
  },
  async run({ args }) {
    const cfg = config();
    const stateUrl = requireStateDatabase(cfg);
    const dataUrl = requireDataDatabase(cfg);
    const state = connect(stateUrl, { name: "status", max: 4 });
    const data = dataUrl === stateUrl ? state : connect(dataUrl, { name: "status", max: 1 });
    try {
      const report = await collectStatus({ state, data });
      process.stdout.write(args.json ? `${JSON.stringify(report)}\n` : formatStatus(report));
    } catch (err) {
      if (isMissingMigration(err))
        throw new Error("the schema is missing: run harness migrate first", { cause: err });
      throw err;
    } finally {
      await state.end({ timeout: 5 });
      if (data !== state) await data.end({ timeout: 5 });
    }
  },
});
