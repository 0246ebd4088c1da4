import { config } from "../config";
import { createLogger } from "../log";
import { WORKER_LOG } from "../worker/logs";
import { runWorker } from "../worker/main";
import { harnessCommand, intFlag } from "./_command";

export default harnessCommand({
  name: "worker",
  description:
    "Poll task_wakeup: claim each task, write its batch, buffer-publish, complete (heartbeating meanwhile), then ack",
  args: {
    concurrency: { type: "string", description: "tasks worked at once", default: "1" },
    untilIdle: {
      type: "boolean",
      description: "exit 0 once task_wakeup has stayed empty for --idle-ms with nothing in flight",
      default: false,
    },
    idleMs: { type: "string", description: "how long empty counts as idle", default: "1000" },
    graceMs: {
      type: "string",
      description: "on SIGTERM/SIGINT, how long in-flight tasks get to finish",
      default: "10000",
    },
  },
  async run({ args }) {
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const idleMs = intFlag("idle-ms", args.idleMs, 0, 3_600_000);
    const graceMs = intFlag("grace-ms", args.graceMs, 0, 3_600_000);
    const log = createLogger("worker", { pid: process.pid });
    const stop = new AbortController();
    const abandon = new AbortController();
    const onSignal = (signal: string) => {
      if (!stop.signal.aborted) {
        log.info(WORKER_LOG.stopping, { signal });
        stop.abort();
      } else {
        log.warn(WORKER_LOG.abandoning, { signal });
        abandon.abort();
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    const stats = await runWorker(
      config(),
      { concurrency, untilIdleMs: args.untilIdle ? idleMs : undefined, graceMs },
      { stop: stop.signal, abandon: abandon.signal },
    );
    const summary = stats.summary();
    process.stdout.write(
      `worker: ${summary.succeeded} tasks succeeded, ${summary.alerts} alerts, ` +
        `${summary.wakeups} wakeups in ${summary.seconds} s (${summary.tasks_per_second} tasks/s)\n`,
    );
  },
});
