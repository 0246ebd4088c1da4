import { randomUUID } from "node:crypto";
import { connect, type Sql } from "../../src/db/connect";
import { NatsQueue } from "../../src/queue/nats/backend";
import { createTasks } from "../../src/tasks/create";
import { pidsListening, waitCpuQuiet } from "../lib/cpu";
import { PgCounter } from "../lib/pgstats";
import { measurePipeline, WARM_UP_TASKS } from "../lib/pipeline";
import { option, subjectMain } from "../lib/protocol";
import { freePort, peakRssMiB, type Role, roleEnv, spawnHarness, waitHttp } from "../lib/roles";
import { scratchDir } from "../lib/scratch";

/**
 * Workload 5, one subject: the whole pipeline as separate processes —
 * `harness dispatcher`, `workers` × `harness worker --concurrency C`,
 * `harness sink --concurrency S` — on one database and a file store, the
 * queues in that database (pgqueue) or, with option `nats: 1`, on NATS
 * JetStream (BENCH_NATS_URL, default the local nats-server; a namespace of
 * its own, dropped afterwards). After an untimed warm-up of
 * WARM_UP_TASKS tasks (../lib/pipeline.ts), timed: from creating K tasks of
 * N alerts (as `harness task create` does, from this process) to the moment
 * data.sink_batches accounts for all K×N rows (polled every 10 ms). Over
 * the same span, the CPU each process used (../lib/cpu.ts): the PostgreSQL
 * server (postmaster and every backend), the nats-server, the dispatcher,
 * the workers and the sink, per task (statements and commits: per task of
 * the warm-up and the run together). Peak RSS
 * (VmHWM) of every role is read just before it is stopped.
 */

/** The queues' settings for the roles: nothing for pgqueue; QUEUE_URL and a fresh namespace on NATS. */
async function openQueues(nats: boolean): Promise<{
  env: Record<string, string>;
  natsPids: () => number[];
  drop(): Promise<void>;
}> {
  if (!nats) return { env: {}, natsPids: () => [], drop: async () => {} };
  const url = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
  const namespace = `bench_e2e_${process.pid}_${randomUUID().slice(0, 6)}`;
  const q = await NatsQueue.open({ url, namespace, name: "bench-e2e" }).catch((cause: unknown) => {
    throw new Error(`no NATS at ${url}: start nats-server -js or set BENCH_NATS_URL`, { cause });
  });
  await q.ensure({ visibilityTimeoutMs: 30_000, replicas: 1 });
  const port = Number(new URL(url.split(",")[0] ?? url).port || 4222);
  const server = pidsListening(port);
  return {
    env: { QUEUE_URL: url, QUEUE_NAMESPACE: namespace },
    natsPids: () => server,
    drop: async () => {
      await q.drop().catch(() => undefined);
      await q.close();
    },
  };
}

/**
 * The front of the pipeline's span, read once the run is over (no poll
 * competes with the pipeline meanwhile): from the timed tasks' insert (one
 * transaction, the newest created_at; the warm-up's came before) to the
 * last one's success, by the database clock; and how many tasks, warm-up
 * included, ended succeeded.
 */
async function frontSeconds(sql: Sql): Promise<{ seconds: number; succeeded: number }> {
  const [r] = await sql`
    WITH timed AS (
      SELECT finished_at, created_at FROM state.tasks
      WHERE created_at = (SELECT max(created_at) FROM state.tasks)
    )
    SELECT (SELECT extract(epoch FROM max(finished_at) - min(created_at))::float8 FROM timed) AS s,
           (SELECT count(*)::int FROM state.tasks WHERE status = 'succeeded') AS ok`;
  return { seconds: Number(r?.s ?? Number.NaN), succeeded: Number(r?.ok ?? 0) };
}

/**
 * The tasks, created as `harness task create` creates them (createTasks, one
 * transaction) but from this process, as the reference adds its jobs: a
 * child's start-up is not the pipeline's cost. Its own session, not the
 * bench's: its statements count as the pipeline's, as the reference's do.
 */
async function create(url: string, count: number, alerts: number): Promise<void> {
  const sql = connect(url, { name: "task-create", max: 1 });
  try {
    await createTasks(sql, { orgId: "bench", payload: { alerts }, count });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function listeners(sql: Sql, app: string): Promise<number> {
  const [r] = await sql`
    SELECT count(DISTINCT pid)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = ${app}`;
  return Number(r?.n ?? 0);
}

/**
 * Connected: each worker and the sink hold their state connection (LISTEN is
 * taken first); on NATS, where they hold none, the dispatcher's pool is
 * open (then waitCpuQuiet: the roles have started up and wait for work).
 */
async function rolesUp(sql: Sql, o: { workers: number; nats: boolean }): Promise<boolean> {
  if (o.nats) return (await listeners(sql, "harness-dispatcher")) > 0;
  return (
    (await listeners(sql, "harness-worker")) >= o.workers &&
    (await listeners(sql, "harness-sink-state")) >= 1
  );
}

function alive(roles: readonly Role[]): void {
  for (const r of roles) {
    if (r.proc.exitCode !== null) {
      throw new Error(`${r.name} exited ${r.proc.exitCode}: ${r.stderr().slice(-800)}`);
    }
  }
}

/** This subject's own sessions (its progress polls): not the pipeline's cost. */
const BENCH_APP = "harness-bench-e2e";

subjectMain(async (params) => {
  const nats = (params.options.nats ?? 0) === 1;
  const alerts = option(params, "alerts");
  const workers = option(params, "workers");
  const concurrency = option(params, "concurrency");
  const sinkConcurrency = option(params, "sinkConcurrency");
  const scratch = scratchDir("harness-bench-e2e-");
  const dir = scratch.dir;
  const port = await freePort();
  // A 30 s lease: an attempt lost mid-way is retried within the round, not after 10 minutes.
  const queues = await openQueues(nats);
  const env = {
    ...roleEnv({ url: params.url, storeDir: dir, port, leaseMs: 30_000 }),
    ...queues.env,
  };
  // connect() names the pool's sessions "harness-<name>": the meter leaves them out.
  const sql = connect(params.url, { name: "bench-e2e", max: 1 });
  const roles: Role[] = [];
  let counter: PgCounter | undefined;
  try {
    // Connected (postgres.js's first statement, its type look-up, done) before the first snapshot.
    await sql`SELECT 1`;
    counter = await PgCounter.open(params.url);
    const own = counter;
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
    while (!(await own.run(() => rolesUp(sql, { workers, nats })))) {
      alive(roles);
      if (Date.now() > deadline) throw new Error("roles did not connect within 30 s");
      await Bun.sleep(20);
    }
    // Started up and idle: their start-up is not counted in the figures.
    await waitCpuQuiet(
      roles.map((r) => r.proc.pid),
      { quietMs: 300, timeoutMs: 30_000 },
    );

    const run = await measurePipeline({
      sql,
      ownApplication: BENCH_APP,
      counter: own,
      tasks: params.count,
      rows: params.count * alerts,
      groups: {
        nats: { members: queues.natsPids },
        dispatcher: { members: () => [dispatcher.proc.pid] },
        workers: { members: () => ws.map((w) => w.proc.pid) },
        sink: { members: () => [sink.proc.pid] },
      },
      begin: () => create(params.url, params.count, alerts),
      warmUp: {
        tasks: WARM_UP_TASKS,
        rows: WARM_UP_TASKS * alerts,
        begin: () => create(params.url, WARM_UP_TASKS, alerts),
      },
      alive: () => alive(roles),
    });
    await run.begun;
    const front = await own.run(() => frontSeconds(sql));
    const rss = Object.fromEntries(roles.map((r) => [r.name, peakRssMiB(r.proc.pid)]));
    const workerRss = Math.max(...ws.map((w) => rss[w.name] ?? 0));
    // Every session on the database ended before the last snapshot.
    await Promise.all(roles.map((r) => r.stop("SIGTERM")));
    await sql.end({ timeout: 5 });
    // The counter saw the warm-up's tasks too.
    const pg = await own.finish(params.count + WARM_UP_TASKS);
    return {
      items: params.count,
      seconds: run.seconds,
      extra: {
        ...run.extra,
        ...pg,
        tasks_succeeded_s: front.seconds,
        succeeded_at_end: front.succeeded,
        rss_dispatcher_mib: rss.dispatcher ?? Number.NaN,
        rss_worker_mib: workerRss,
        rss_sink_mib: rss.sink ?? Number.NaN,
        rss_max_mib: Math.max(...Object.values(rss)),
      },
    };
  } finally {
    await Promise.allSettled(roles.map((r) => r.stop("SIGTERM")));
    await sql.end({ timeout: 1 });
    await counter?.close();
    await queues.drop();
    scratch.release();
  }
});
