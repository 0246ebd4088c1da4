import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type Sql } from "../../src/db/connect";
import { option, since, subjectMain } from "../lib/protocol";
import {
  freePort,
  peakRssMiB,
  type Role,
  roleEnv,
  runHarness,
  spawnHarness,
  waitHttp,
} from "../lib/roles";

/**
 * Workload 5, one subject: the whole pipeline as separate processes —
 * `harness dispatcher`, `workers` × `harness worker --concurrency C`,
 * `harness sink --concurrency S` — on one database and a file store. Timed:
 * from spawning `harness task create --count K --alerts N` to the moment
 * data.sink_batches accounts for all K×N rows (polled every 10 ms). Peak RSS
 * (VmHWM) of every role is read just before it is stopped.
 */

async function progress(sql: Sql): Promise<{ rows: number; succeeded: number }> {
  const [r] = await sql`
    SELECT (SELECT coalesce(sum(rows_inserted), 0)::int FROM data.sink_batches) AS rows,
           (SELECT count(*)::int FROM state.tasks WHERE status = 'succeeded') AS succeeded`;
  return { rows: Number(r?.rows ?? 0), succeeded: Number(r?.succeeded ?? 0) };
}

async function listeners(sql: Sql, app: string): Promise<number> {
  const [r] = await sql`
    SELECT count(DISTINCT pid)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = ${app}`;
  return Number(r?.n ?? 0);
}

function alive(roles: readonly Role[]): void {
  for (const r of roles) {
    if (r.proc.exitCode !== null) {
      throw new Error(`${r.name} exited ${r.proc.exitCode}: ${r.stderr().slice(-800)}`);
    }
  }
}

subjectMain(async (params) => {
  const alerts = option(params, "alerts");
  const workers = option(params, "workers");
  const concurrency = option(params, "concurrency");
  const sinkConcurrency = option(params, "sinkConcurrency");
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-e2e-"));
  const port = await freePort();
  // A 30 s lease: an attempt lost mid-way is retried within the round, not after 10 minutes.
  const env = roleEnv({ url: params.url, storeDir: dir, port, leaseMs: 30_000 });
  const sql = connect(params.url, { name: "bench-e2e", max: 2 });
  const roles: Role[] = [];
  try {
    const dispatcher = spawnHarness("dispatcher", ["dispatcher"], env);
    roles.push(dispatcher);
    await waitHttp(env.DISPATCHER_URL ?? "", "/readyz", dispatcher);
    const sink = spawnHarness("sink", ["sink", "--concurrency", String(sinkConcurrency)], env);
    roles.push(sink);
    const ws = Array.from({ length: workers }, (_, i) =>
      spawnHarness(`worker-${i}`, ["worker", "--concurrency", String(concurrency)], env),
    );
    roles.push(...ws);
    // Ready: each worker and the sink hold their state connection (LISTEN is taken first).
    const deadline = Date.now() + 30_000;
    while (
      (await listeners(sql, "harness-worker")) < workers ||
      (await listeners(sql, "harness-sink-state")) < 1
    ) {
      alive(roles);
      if (Date.now() > deadline) throw new Error("roles did not connect within 30 s");
      await Bun.sleep(20);
    }
    await Bun.sleep(200);

    const want = params.count * alerts;
    const start = performance.now();
    const created = runHarness(
      [
        "task",
        "create",
        "--org",
        "bench",
        "--alerts",
        String(alerts),
        "--count",
        String(params.count),
      ],
      env,
    );
    let createSeconds = Number.NaN;
    void created.then(() => {
      createSeconds = since(start);
    });
    // When the last task succeeded (dispatcher + workers) vs the last row (sink): who lags.
    let tasksSeconds = Number.NaN;
    for (;;) {
      const p = await progress(sql);
      if (Number.isNaN(tasksSeconds) && p.succeeded >= params.count) tasksSeconds = since(start);
      if (p.rows >= want) break;
      alive(roles);
      await Bun.sleep(10);
    }
    const seconds = since(start);
    const c = await created;
    if (c.code !== 0) throw new Error(`task create exited ${c.code}: ${c.stderr}`);
    const [t] = await sql`
      SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS ok, count(*)::int AS n
      FROM state.tasks`;
    const rss = Object.fromEntries(roles.map((r) => [r.name, peakRssMiB(r.proc.pid)]));
    const workerRss = Math.max(...ws.map((w) => rss[w.name] ?? 0));
    return {
      items: params.count,
      seconds,
      extra: {
        rows_per_s: want / seconds,
        succeeded_at_end: Number(t?.ok ?? 0),
        task_create_s: createSeconds,
        tasks_succeeded_s: tasksSeconds,
        rss_dispatcher_mib: rss.dispatcher ?? Number.NaN,
        rss_worker_mib: workerRss,
        rss_sink_mib: rss.sink ?? Number.NaN,
        rss_max_mib: Math.max(...Object.values(rss)),
      },
    };
  } finally {
    await Promise.allSettled(roles.map((r) => r.stop("SIGTERM")));
    await sql.end({ timeout: 1 });
    rmSync(dir, { recursive: true, force: true });
  }
});
