import { config, requireDataDatabase, requireObjectStore, requireStateDatabase } from "../config";
import { connect, describeUrl } from "../db/connect";
import { createLogger } from "../log";
import { openObjectStore } from "../objectstore";
import { runSinkLoop } from "../sink/loop";
import { newSinkMetrics, summaryLine } from "../sink/metrics";
import { harnessCommand, intFlag } from "./_command";

export default harnessCommand({
  name: "sink",
  description:
    "Poll buffer_queue: fetch each batch, validate it whole, upsert it in one transaction, then ack (poison is dead-lettered)",
  args: {
    concurrency: {
      type: "string",
      description: "batches written at once (one more is fetched and validated ahead)",
      default: "4",
    },
    "until-idle": {
      type: "boolean",
      description: "exit 0 once buffer_queue has stayed empty for --idle-ms",
      default: false,
    },
    "idle-ms": { type: "string", description: "how long empty counts as idle", default: "1000" },
  },
  async run({ args }) {
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const idleMs = intFlag("idle-ms", args["idle-ms"], 0, 3_600_000);
    const cfg = config();
    const stateUrl = requireStateDatabase(cfg);
    const dataUrl = requireDataDatabase(cfg);
    const store = await openObjectStore(requireObjectStore(cfg), cfg.s3);
    const log = createLogger("sink");
    const stateSql = connect(stateUrl, { name: "sink-state", max: concurrency + 2 });
    const dataSql = connect(dataUrl, { name: "sink-data", max: concurrency });
    const stop = new AbortController();
    const onSignal = (sig: string) => {
      if (!stop.signal.aborted) log.info("stopping: finishing in-flight batches", { signal: sig });
      stop.abort();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    const metrics = newSinkMetrics();
    const started = performance.now();
    try {
      await runSinkLoop(
        {
          state: stateSql,
          stateSql,
          data: dataSql,
          store,
          maxBatchBytes: cfg.maxBatchBytes,
          visibilityTimeoutMs: cfg.visibilityTimeoutMs,
          log,
          metrics,
        },
        {
          onReady: () =>
            log.info("sink started", {
              concurrency,
              state: describeUrl(stateUrl),
              data: describeUrl(dataUrl),
              store: store.root,
            }),
          concurrency,
          maxReceives: cfg.maxReceives,
          untilIdle: args["until-idle"],
          idleMs,
          stop: stop.signal,
        },
      );
    } finally {
      await Promise.allSettled([stateSql.end({ timeout: 5 }), dataSql.end({ timeout: 5 })]);
    }
    const elapsed = performance.now() - started;
    log.info("sink stopped", { ...metrics, ms: Math.round(elapsed) });
    process.stdout.write(summaryLine(metrics, elapsed));
  },
});
