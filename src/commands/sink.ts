import { config } from "../config";
import { createLogger } from "../log";
import { SINK_LOG } from "../sink/logs";
import { runSink } from "../sink/main";
import { summaryLine } from "../sink/metrics";
import { warnExcessPrivilege } from "../users/excess";
import { harnessCommand, intFlag } from "./_command";
import { giveUpArg, giveUpFlag } from "./_give-up";

export default harnessCommand({
  name: "sink",
  description:
    "Poll buffer_queue: fetch each batch, validate it whole, upsert it in one transaction, then ack (poison is dead-lettered)",
  args: {
    concurrency: {
      type: "string",
      description:
        "writes at once (small batches in hand share one); up to four times as many batches are in hand",
      default: "4",
    },
    "until-idle": {
      type: "boolean",
      description: "exit 0 once buffer_queue has stayed empty for --idle-ms",
      default: false,
    },
    "idle-ms": { type: "string", description: "how long empty counts as idle", default: "1000" },
    "give-up-ms": giveUpArg,
  },
  checks: { databases: ["queue", "data"], schema: true, oneShot: false },
  async run({ args }) {
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const idleMs = intFlag("idle-ms", args["idle-ms"], 0, 3_600_000);
    const giveUpMs = giveUpFlag(args["give-up-ms"], args["until-idle"]);
    const log = createLogger("sink");
    await warnExcessPrivilege("sink", config(), process.env, log);
    const stop = new AbortController();
    const onSignal = (signal: string) => {
      if (!stop.signal.aborted) log.info(SINK_LOG.stopping, { signal });
      stop.abort();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    const { metrics, elapsedMs } = await runSink(
      config(),
      { concurrency, untilIdle: args["until-idle"], idleMs, giveUpMs },
      { stop: stop.signal },
    );
    process.stdout.write(summaryLine(metrics, elapsedMs));
  },
});
