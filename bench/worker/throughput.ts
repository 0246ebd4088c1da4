/**
 * Worker throughput: tasks per second for ONE `harness worker` process (real
 * dispatcher process, real PostgreSQL — default postgres://postgres@127.0.0.1:5432/postgres
 * or BENCH_DATABASE_URL — and the file store), 100 alerts per task.
 *
 *   bun bench/worker/throughput.ts [--tasks 400] [--concurrency 1,16] [--alerts 100]
 *
 * For each concurrency: a fresh database, K tasks created (wakeups drained to
 * task_wakeup before timing), then the clock runs from the worker's first claim
 * to its last completed task, read from the worker's own log timestamps (so
 * process start-up and the idle tail are not counted); wall time from spawn to
 * "all succeeded" is reported too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { connect, type Sql } from "../../src/db/connect";
import { freePort } from "../../test/support/embedded";
import { type Role, runHarness, spawnHarness } from "../../test/support/processes";
import { waitFor } from "../../test/support/wait";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "400" },
    concurrency: { type: "string", default: "1,16" },
    alerts: { type: "string", default: "100" },
  },
});
const TASKS = Number(values.tasks);
const ALERTS = Number(values.alerts);
const ADMIN = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

function dbUrl(name: string): string {
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

async function count(sql: Sql, query: "wakeups" | "succeeded"): Promise<number> {
  const rows =
    query === "wakeups"
      ? await sql`SELECT count(*)::int AS n FROM state.queue_messages WHERE queue_name = 'task_wakeup'`
      : await sql`SELECT count(*)::int AS n FROM state.tasks WHERE status = 'succeeded'`;
  return Number(rows[0]?.n ?? 0);
}

function logTime(role: Role, msg: string, pick: "first" | "last"): number {
  const times = role.logs.filter((l) => l.msg === msg).map((l) => Date.parse(String(l.ts)));
  return pick === "first" ? Math.min(...times) : Math.max(...times);
}

async function round(concurrency: number) {
  const name = `harness_bench_worker_${process.pid}_${concurrency}`;
  const admin = connect(ADMIN, { name: "bench-admin", max: 1 });
  await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
  await admin`CREATE DATABASE ${admin(name)}`;
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-worker-"));
  const port = await freePort();
  const env = {
    DATABASE_URL: dbUrl(name),
    INTERNAL_AUTH_TOKEN: "bench-internal-token-0123456789",
    OBJECT_STORE_URL: pathToFileURL(dir).href,
    PORT: String(port),
    DISPATCHER_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: "info",
  };
  const sql = connect(env.DATABASE_URL, { name: "bench", max: 2 });
  let dispatcher: Role | undefined;
  try {
    if ((await runHarness(["migrate"], env)).code !== 0) throw new Error("migrate failed");
    dispatcher = spawnHarness("dispatcher", ["dispatcher"], env);
    await waitFor(async () => (await fetch(`${env.DISPATCHER_URL}/readyz`).catch(() => null))?.ok, {
      what: "dispatcher ready",
      timeoutMs: 20_000,
    });
    const created = await runHarness(
      ["task", "create", "--org", "bench", "--alerts", String(ALERTS), "--count", String(TASKS)],
      env,
    );
    if (created.code !== 0) throw new Error(`task create: ${created.stderr}`);
    await waitFor(async () => (await count(sql, "wakeups")) === TASKS, {
      what: "wakeups drained",
      timeoutMs: 60_000,
    });
    const spawned = performance.now();
    const worker = spawnHarness("worker", ["worker", "--concurrency", String(concurrency)], env);
    await waitFor(async () => (await count(sql, "succeeded")) === TASKS, {
      what: "all tasks succeeded",
      timeoutMs: 600_000,
      intervalMs: 50,
    });
    const wallSeconds = (performance.now() - spawned) / 1000;
    await worker.stop("SIGTERM");
    const seconds = (logTime(worker, "task", "last") - logTime(worker, "claimed", "first")) / 1000;
    return {
      concurrency,
      tasks: TASKS,
      alerts_per_task: ALERTS,
      seconds: Number(seconds.toFixed(3)),
      tasks_per_second: Math.round(TASKS / seconds),
      alerts_per_second: Math.round((TASKS * ALERTS) / seconds),
      wall_seconds_from_spawn: Number(wallSeconds.toFixed(3)),
    };
  } finally {
    await dispatcher?.stop("SIGTERM");
    await sql.end();
    await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const c of values.concurrency.split(",").map(Number)) {
  const result = await round(c);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
