import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Logger, makeWorkerUtils } from "graphile-worker";
import { Pool } from "pg";
import { connect } from "../../src/db/connect";
import { waitFor } from "../../test/support/wait";
import { waitCpuQuiet } from "../lib/cpu";
import { PgCounter } from "../lib/pgstats";
import { measurePipeline, WARM_UP_TASKS } from "../lib/pipeline";
import { chunks, option, subjectMain } from "../lib/protocol";
import { peakRssMiB, type Stoppable, spawnScript } from "../lib/roles";
import { scratchDir } from "../lib/scratch";

/**
 * Workload 5, the graphile-worker reference: the same work as ours on
 * graphile-worker 0.18 (../graphile/role.ts): `workers` processes × C
 * running `make_batch` (the task's alert lines written to a file store as
 * our worker writes them, then an `ingest_batch` job added) and one sink
 * process × S running `ingest_batch` (fetch, validate every line, the sink's insert).
 * No leases, fencing, tokens or outbox. Warmed up and timed as ours
 * (../lib/pipeline.ts): from adding the K `make_batch` jobs (batches of 1,000, from this process)
 * to data.sink_batches accounting for all K×N rows; the CPU of PostgreSQL,
 * the workers and the sink, and the statements and commits, per task.
 */

const silent = new Logger(() => () => {});
const ORG = "bench";
/** This subject's own sessions (its progress polls): not the pipeline's cost. */
const BENCH_APP = "harness-bench-e2e";

subjectMain(async (params) => {
  const alerts = option(params, "alerts");
  const workers = option(params, "workers");
  const concurrency = option(params, "concurrency");
  const sinkConcurrency = option(params, "sinkConcurrency");
  const scratch = scratchDir("harness-bench-e2e-graphile-");
  const dir = scratch.dir;
  // A pool of our own, ended here: the statistics are read once every session on the database has ended.
  const pool = new Pool({ connectionString: params.url, max: 2 });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  const utils = await makeWorkerUtils({ pgPool: pool, logger: silent });
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await Promise.resolve(utils.release());
    await pool.end();
  };
  const sql = connect(params.url, { name: "bench-e2e", max: 1 });
  const roles: Stoppable[] = [];
  let counter: PgCounter | undefined;
  try {
    await utils.migrate();
    // Connected (postgres.js's first statement, its type look-up, done) before the first snapshot.
    await sql`SELECT 1`;
    counter = await PgCounter.open(params.url);
    const own = counter;
    const script = join(import.meta.dir, "..", "graphile", "role.ts");
    const role = (name: string, kind: string, c: number) =>
      spawnScript(name, script, {
        GRAPHILE_ROLE: kind,
        DATABASE_URL: params.url,
        STORE_DIR: dir,
        CONCURRENCY: String(c),
        ALERTS: String(alerts),
      });
    const sink = role("sink", "ingest", sinkConcurrency);
    const ws = Array.from({ length: workers }, (_, i) => role(`worker-${i}`, "make", concurrency));
    roles.push(sink, ...ws);
    const alive = () => {
      for (const r of roles) {
        if (r.proc.exitCode !== null) {
          throw new Error(`${r.name} exited ${r.proc.exitCode}: ${r.stderr().slice(-800)}`);
        }
      }
    };
    await waitFor(
      () => {
        alive();
        return roles.every((r) => r.stderr().includes("READY"));
      },
      { what: "graphile-worker roles running", timeoutMs: 30_000, intervalMs: 20 },
    );
    await waitCpuQuiet(
      roles.map((r) => r.proc.pid),
      { quietMs: 300, timeoutMs: 30_000 },
    );
    const jobsOf = (n: number) =>
      Array.from({ length: n }, () => ({
        identifier: "make_batch",
        payload: { task_id: randomUUID(), org_id: ORG },
      }));
    const jobs = jobsOf(params.count);
    const run = await measurePipeline({
      sql,
      ownApplication: BENCH_APP,
      counter: own,
      tasks: params.count,
      rows: params.count * alerts,
      groups: {
        workers: { members: () => ws.map((w) => w.proc.pid) },
        sink: { members: () => [sink.proc.pid] },
      },
      begin: async () => {
        for (const part of chunks(jobs, 1000)) await utils.addJobs(part);
      },
      warmUp: {
        tasks: WARM_UP_TASKS,
        rows: WARM_UP_TASKS * alerts,
        begin: () => utils.addJobs(jobsOf(WARM_UP_TASKS)),
      },
      alive,
    });
    const rss = Object.fromEntries(roles.map((r) => [r.name, peakRssMiB(r.proc.pid)]));
    // Every session on the database ended before the last snapshot.
    await Promise.all(roles.map((r) => r.stop("SIGTERM")));
    await release();
    await sql.end({ timeout: 5 });
    // The counter saw the warm-up's tasks too.
    const pg = await own.finish(params.count + WARM_UP_TASKS);
    return {
      items: params.count,
      seconds: run.seconds,
      extra: {
        ...run.extra,
        ...pg,
        rss_worker_mib: Math.max(...ws.map((w) => rss[w.name] ?? 0)),
        rss_sink_mib: rss.sink ?? Number.NaN,
        rss_max_mib: Math.max(...Object.values(rss)),
      },
    };
  } finally {
    await Promise.allSettled(roles.map((r) => r.stop("SIGTERM")));
    await release().catch(() => {});
    await sql.end({ timeout: 1 });
    await counter?.close();
    scratch.release();
  }
});
