import { type Config, config } from "../config";
import { connect } from "../db/connect";
import { createLogger } from "../log";
import { EmbeddedUnavailableError } from "../platform/embedded";
import { openQueue } from "../queue/open";
import { demoProgress } from "../reads/progress";
import { collectStatus } from "../reads/status";
import { sleep } from "../sleep";
import { createTasks } from "../tasks/create";
import { type Home, openHome } from "../up/home";
import { type RunningPlatform, startPlatform } from "../up/platform";
import { formatProgress, isDemoDone, progressWriter } from "../up/progress";
import { harnessCommand, intFlag, UsageError } from "./_command";

const log = createLogger("up");

export default harnessCommand({
  name: "up",
  description:
    "The whole platform on one machine: embedded PostgreSQL and a file store unless URLs are given, then dispatcher, workers and sink",
  args: {
    workers: { type: "string", description: "worker processes", default: "2" },
    concurrency: { type: "string", description: "tasks in flight per worker", default: "8" },
    demo: {
      type: "string",
      description: "create K demo tasks, show progress, exit 0 when all are done",
    },
    alerts: { type: "string", description: "alerts per demo task", default: "10" },
    dir: { type: "string", description: "where state is kept between runs", default: ".harness" },
  },
  async run({ args }) {
    const workers = intFlag("workers", args.workers, 1, 64);
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const demo = args.demo === undefined ? undefined : intFlag("demo", args.demo, 1, 1_000_000);
    const alerts = intFlag("alerts", args.alerts, 0, 100_000);
    const cfg = config();
    const home = await openHome(args.dir);
    const platform = await startPlatform(cfg, home, { workers, concurrency }).catch(
      (err: unknown) => {
        if (err instanceof EmbeddedUnavailableError) throw new UsageError(err.message);
        throw err;
      },
    );
    let stopping: Promise<void> | undefined;
    const shutdown = (code: number) => {
      stopping ??= platform.stop().then(() => process.exit(code));
      return stopping;
    };
    process.on("SIGINT", () => void shutdown(0));
    process.on("SIGTERM", () => void shutdown(0));
    const where = platform.embedded
      ? `embedded PostgreSQL in ${home.pgDir}`
      : "the configured PostgreSQL";
    process.stdout.write(
      `harness up: dispatcher ${platform.dispatcherUrl}, ${workers} worker(s), sink, on ${where}; logs in ${platform.logDir}\n`,
    );
    if (demo === undefined) {
      process.stdout.write("press Ctrl-C to stop\n");
      return;
    }
    const ok = await runDemo(cfg, platform, home, { tasks: demo, alerts });
    await shutdown(ok ? 0 : 1);
  },
});

/** Creates the demo tasks, shows progress until all are done, then the summary; true when all went well. */
async function runDemo(
  cfg: Config,
  platform: RunningPlatform,
  home: Home,
  o: { tasks: number; alerts: number },
): Promise<boolean> {
  const state = connect(platform.stateUrl, { name: "up", max: 2 });
  const data = connect(platform.dataUrl, { name: "up", max: 1 });
  const queue = await openQueue(
    { ...cfg, stateDatabaseUrl: platform.stateUrl },
    { name: "up", connections: 1 },
  );
  try {
    const ids = await createTasks(state, {
      orgId: "demo",
      payload: { alerts: o.alerts },
      count: o.tasks,
    });
    process.stdout.write(`created ${o.tasks} demo task(s) with ${o.alerts} alert(s) each\n`);
    const started = Date.now();
    const writer = progressWriter(process.stdout);
    for (;;) {
      const p = await demoProgress(state, data, ids);
      writer.update(formatProgress(p, Date.now() - started));
      if (isDemoDone(p)) {
        writer.end();
        const expected = p.succeeded * o.alerts;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(
          `summary: ${p.succeeded} succeeded, ${p.failed} failed of ${p.total} tasks; ${p.rows} rows ingested (expected ${expected}); ${p.deadLetters} dead letters; ${seconds} s\n`,
        );
        const all = await collectStatus({ state, data, queues: queue.admin() });
        process.stdout.write(
          `${home.dir} now holds ${all.tasks.succeeded} succeeded task(s) and ${all.alerts.rows} alert row(s)\n`,
        );
        const ok = p.failed === 0 && p.rows === expected;
        if (!ok)
          log.error("demo finished with errors", { failed: p.failed, rows: p.rows, expected });
        return ok;
      }
      await sleep(process.stdout.isTTY ? 200 : 1000);
    }
  } finally {
    await Promise.allSettled([queue.close(), state.end(), data.end()]);
  }
}
