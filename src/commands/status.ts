import { config, requireDataDatabase, requireStateDatabase } from "../config";
import { connect } from "../db/connect";
import { openQueue } from "../queue/open";
import { collectStatus, formatStatus } from "../reads/status";
import { sleep } from "../sleep";
import { harnessCommand, UsageError } from "./_command";

export default harnessCommand({
  name: "status",
  description:
    "Tasks by status, queue depths (ready / in-flight / dead), pending outbox rows, alert rows",
  args: {
    json: { type: "boolean", description: "print one JSON object" },
    watch: { type: "boolean", description: "refresh every second until Ctrl-C" },
  },
  checks: { databases: ["state", "data"], schema: true, oneShot: true },
  async run({ args }) {
    if (args.watch && args.json) throw new UsageError("--watch and --json do not go together");
    const cfg = config();
    const stateUrl = requireStateDatabase(cfg);
    const dataUrl = requireDataDatabase(cfg);
    const backend = await openQueue(cfg, { name: "status", connections: 1 });
    const state = connect(stateUrl, { name: "status", max: 4 });
    const data = dataUrl === stateUrl ? state : connect(dataUrl, { name: "status", max: 1 });
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      do {
        const report = await collectStatus({ state, data, queues: backend.admin() });
        if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        else if (!args.watch) process.stdout.write(formatStatus(report));
        else {
          // On a terminal redraw in place; into a pipe, one table per refresh.
          const clear = process.stdout.isTTY ? "\x1b[H\x1b[2J" : "";
          process.stdout.write(`${clear}${new Date().toISOString()}\n${formatStatus(report)}\n`);
          await sleep(1000, stop.signal);
        }
      } while (args.watch && !stop.signal.aborted);
    } finally {
      await backend.close();
      await state.end({ timeout: 5 });
      if (data !== state) await data.end({ timeout: 5 });
    }
  },
});
