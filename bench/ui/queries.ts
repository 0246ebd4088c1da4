import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { connect, type Sql } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";
import { pgAdmin } from "../../src/queue/pg/admin";
import { type TaskCursor, type TaskPageParams, taskPage } from "../../src/reads/tasks";
import { dlqView } from "../../src/ui/dlq";
import { overviewSource, readOverview } from "../../src/ui/overview";
import { readTaskDetail } from "../../src/ui/task-detail";

/**
 * The dashboard's page reads on 1,000,000 tasks (issue 16: each under 50 ms).
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/ui/queries.ts [--tasks N] [--reseed]
 *
 * Seeds a database of its own (`harness_bench_ui`, kept between runs; a few
 * minutes to seed) shaped like a busy platform: 95 % of the tasks
 * succeeded, 100,000 of them in the last 15 minutes (moved there again at
 * each run), each with its attempts,
 * outbox rows, batch and alert; a backlog of queued tasks and wakeups,
 * running tasks (some with expired leases), failures and dead letters.
 * Then times each page's reads as the dashboard runs them (median of 20
 * after a warm-up), and records every statement's plan with EXPLAIN ANALYZE
 * (auto_explain, so the plans are of the exact statements) in
 * bench/results/<date>-ui-plans.txt.
 */

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { tasks: { type: "string", default: "1000000" }, reseed: { type: "boolean" } },
});
const TASKS = Number(values.tasks);
const ADMIN = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const NAME = "harness_bench_ui";
const RUNS = 20;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A finished seed of this size leaves a row in `public.harness_bench_ui`. */
async function seeded(sql: Sql): Promise<boolean> {
  const [table] = await sql`SELECT to_regclass('public.harness_bench_ui') IS NOT NULL AS ok`;
  if (table?.ok !== true) return false;
  const [row] = await sql`SELECT tasks FROM public.harness_bench_ui`;
  return row?.tasks === TASKS;
}

async function seed(sql: Sql): Promise<void> {
  const t0 = performance.now();
  const step = async (what: string, q: Promise<unknown>) => {
    const s = performance.now();
    await q;
    console.error(`  ${what}: ${((performance.now() - s) / 1000).toFixed(1)} s`);
  };
  await sql`DROP TABLE IF EXISTS public.harness_bench_ui`;
  await sql`DROP SCHEMA IF EXISTS state CASCADE`;
  await sql`DROP SCHEMA IF EXISTS data CASCADE`;
  await sql`DROP SCHEMA IF EXISTS drizzle CASCADE`;
  await migrateDatabase(sql, "state");
  await migrateDatabase(sql, "data");
  const n = TASKS;
  // g: 1..n, oldest first. Status by g's residue; the newest 10 % finished in the last 15 minutes.
  await step(
    "tasks",
    sql`
    INSERT INTO state.tasks (org_id, status, attempt, lease_token, lease_expires_at, payload, last_error,
                             created_at, updated_at, finished_at)
    SELECT 'org-' || (g % 100), s.status, s.attempt,
           CASE WHEN s.attempt > 0 THEN gen_random_uuid() END,
           CASE WHEN s.status = 'running' THEN now() + make_interval(secs => CASE WHEN g % 2 = 0 THEN 30 ELSE -30 END) END,
           jsonb_build_object('alerts', 10), CASE WHEN s.status = 'failed' THEN 'attempt 5 ended without completing' END,
           c.created, c.created, CASE WHEN s.status IN ('succeeded', 'failed') THEN c.created + interval '2 seconds' END
    FROM generate_series(1, ${n}) g,
    LATERAL (SELECT CASE WHEN g > ${n} * 0.9
                         THEN now() - make_interval(secs => 900 * (${n} - g)::float8 / (${n} * 0.1))
                         ELSE now() - interval '15 minutes' - make_interval(secs => 604800 * (${n} * 0.9 - g)::float8 / (${n} * 0.9)) END AS created) c,
    LATERAL (SELECT CASE WHEN g % 500 = 7 THEN 'running'
                         WHEN g % 125 = 3 THEN 'failed'
                         WHEN g % 25 = 1 THEN 'queued'
                         ELSE 'succeeded' END::state.task_status AS status) s0,
    LATERAL (SELECT s0.status, CASE WHEN s0.status = 'queued' THEN 0 WHEN g % 20 = 0 THEN 2 ELSE 1 END AS attempt) s`,
  );
  await step(
    "task_attempts",
    sql`
    INSERT INTO state.task_attempts (task_id, attempt, lease_token, claimed_at)
    SELECT id, a, gen_random_uuid(), created_at + make_interval(secs => a)
    FROM state.tasks, generate_series(1, attempt) a`,
  );
  await step(
    "outbox",
    sql`
    INSERT INTO state.outbox (queue_name, payload, status, task_id, attempt, created_at, sent_at)
    SELECT 'task_wakeup', jsonb_build_object('task_id', id), 'sent'::state.outbox_status, id, NULL::int, created_at, created_at FROM state.tasks
    UNION ALL
    SELECT 'buffer_queue', jsonb_build_object('task_id', id, 'org_id', org_id, 'attempt', attempt,
             'batch_uri', 'file:///objects/' || org_id || '/' || id || '/' || attempt || '-a.jsonl',
             'content_type', 'application/x-ndjson', 'batch_size_bytes', 2048),
           'sent', id, attempt, finished_at, finished_at
    FROM state.tasks WHERE status = 'succeeded'`,
  );
  await sql`UPDATE state.outbox SET status = 'pending', sent_at = NULL WHERE id > (SELECT max(id) - 500 FROM state.outbox)`;
  await step(
    "queue messages",
    sql`
    INSERT INTO state.queue_messages (queue_name, payload, available_at, receive_count, last_error)
    (SELECT 'task_wakeup', jsonb_build_object('task_id', id), now(), 0, NULL FROM state.tasks WHERE status = 'queued')
    UNION ALL
    (SELECT 'buffer_queue.dlq', jsonb_build_object('task_id', id, 'org_id', org_id, 'attempt', 1,
             'batch_uri', 'file:///objects/' || org_id || '/' || id || '/1-a.jsonl',
             'content_type', 'application/x-ndjson', 'batch_size_bytes', 2048),
           now(), 5, 'batch object missing: file:///objects/' || org_id || '/' || id || '/1-a.jsonl (dead-lettered after 5 receives)'
    FROM state.tasks WHERE status = 'failed' LIMIT 300)`,
  );
  await step(
    "sink_batches",
    sql`
    INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped, committed_at)
    SELECT id, org_id, attempt, 'file:///objects/' || org_id || '/' || id || '/' || attempt || '-a.jsonl', 10, 0,
           finished_at + interval '1 second'
    FROM state.tasks WHERE status = 'succeeded'`,
  );
  await step(
    "alert_events",
    sql`
    INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
    SELECT id || ':0', org_id, id, 'bench', 'low', 'alert', created_at FROM state.tasks WHERE status = 'succeeded'`,
  );
  await step("vacuum analyze", sql`VACUUM ANALYZE`);
  await sql`CREATE TABLE public.harness_bench_ui AS SELECT ${n}::int AS tasks`;
  console.error(`seeded in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/**
 * Puts the newest tenth of the finished tasks (and their batches) in the last 15 minutes,
 * as a platform finishing ~110 tasks a second would have them, whenever the seed was made.
 */
async function recentWindow(sql: Sql): Promise<void> {
  const recent = Math.floor(TASKS / 10);
  await sql`
    WITH recent AS (
      SELECT id, row_number() OVER (ORDER BY created_at DESC) AS r FROM state.tasks
      WHERE finished_at IS NOT NULL ORDER BY created_at DESC LIMIT ${recent}
    )
    UPDATE state.tasks t SET finished_at = now() - make_interval(secs => 900.0 * r / ${recent})
    FROM recent WHERE t.id = recent.id`;
  await sql`
    UPDATE data.sink_batches b SET committed_at = t.finished_at
    FROM state.tasks t WHERE t.id = b.task_id AND t.finished_at > now() - interval '15 minutes'`;
  await sql`VACUUM ANALYZE state.tasks`;
  await sql`VACUUM ANALYZE data.sink_batches`;
}

interface Timing {
  page: string;
  read: string;
  median: number;
  p95: number;
  max: number;
}

async function time(page: string, read: string, run: () => Promise<unknown>): Promise<Timing> {
  for (let i = 0; i < 3; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    await run();
    ms.push(performance.now() - s);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? Number.NaN;
  return { page, read, median: at(0.5), p95: at(0.95), max: ms.at(-1) ?? Number.NaN };
}

/** Every page read, as a name and a function of a pool. */
async function reads(sql: Sql): Promise<Array<[string, string, () => Promise<unknown>]>> {
  const admin = pgAdmin(sql);
  const dbs = { state: sql, data: sql };
  const page = (p: Omit<TaskPageParams, "limit">) => () => taskPage(sql, { limit: 50, ...p });
  let deep: TaskCursor | undefined;
  for (let i = 0; i < 20; i++) {
    const r = await taskPage(sql, { limit: 50, ...(deep ? { after: deep } : {}) });
    deep = r.next ?? undefined;
  }
  const [twice] =
    await sql`SELECT task_id::text AS id FROM state.task_attempts WHERE attempt = 2 LIMIT 1`;
  const [prefix] = await sql`SELECT left(id::text, 3) AS p FROM state.tasks LIMIT 1`;
  const taskId = String(twice?.id);
  // The chart's old buckets are read a chunk per refresh, once: fill it, as a dashboard open for 30 s has.
  const steady = overviewSource({ ...dbs, admin });
  for (let i = 0; i < 30; i++) {
    const o = await readOverview(steady);
    if (!o.throughput.finished.includes(null) && !o.throughput.rows.includes(null)) break;
  }
  return [
    ["/", "overview (counts, depths, outbox, rows, throughput, roles)", () => readOverview(steady)],
    [
      "/",
      "overview, first refresh after start (chart not filled yet)",
      () => readOverview(overviewSource({ ...dbs, admin })),
    ],
    ["/tasks", "first page, any status", page({})],
    ["/tasks", "page 21, any status (keyset)", page(deep ? { after: deep } : {})],
    ["/tasks", "status succeeded", page({ filter: "succeeded" })],
    ["/tasks", "status queued", page({ filter: "queued" })],
    ["/tasks", "status running", page({ filter: "running" })],
    ["/tasks", "running, lease expired", page({ filter: "expired" })],
    ["/tasks", "org-7", page({ orgId: "org-7" })],
    ["/tasks", "org-7, failed", page({ orgId: "org-7", filter: "failed" })],
    ["/tasks", `id prefix ${String(prefix?.p)}`, page({ idPrefix: String(prefix?.p) })],
    ["/tasks/:id", "task, attempts, outbox rows, batches", () => readTaskDetail(dbs, taskId)],
    ["/dlq", "dead letters (up to 1,000) and depths", () => dlqView(admin, () => new Date())],
  ];
}

/** Runs every read once on a session with auto_explain: the plans of the exact statements. */
async function plans(url: string): Promise<string[]> {
  const out: string[] = [];
  const sql = postgres(url, {
    max: 1,
    onnotice: (n) => {
      if (typeof n.message === "string" && n.message.includes("Query Text")) out.push(n.message);
    },
  });
  try {
    const all = await reads(sql);
    await sql`LOAD 'auto_explain'`;
    await sql`SET auto_explain.log_min_duration = 0`;
    await sql`SET auto_explain.log_analyze = on`;
    await sql`SET auto_explain.log_buffers = on`;
    await sql`SET auto_explain.log_level = notice`;
    await sql`SET client_min_messages = notice`;
    for (const [page, read, run] of all) {
      out.push(`\n==== ${page}: ${read}`);
      await run();
    }
  } finally {
    await sql.end();
  }
  return out;
}

async function main(): Promise<void> {
  const admin = connect(ADMIN, { name: "bench-admin", max: 1 });
  const [exists] = await admin`SELECT 1 AS one FROM pg_database WHERE datname = ${NAME}`;
  if (exists === undefined) await admin`CREATE DATABASE ${admin(NAME)}`;
  await admin.end();
  const url = withDatabase(ADMIN, NAME);
  const sql = connect(url, { name: "ui", max: 4 });
  try {
    if (values.reseed || !(await seeded(sql))) {
      console.error(`seeding ${TASKS.toLocaleString("en-US")} tasks into ${NAME}…`);
      await seed(sql);
    }
    await recentWindow(sql);
    const loadBefore = loadavg();
    const timings: Timing[] = [];
    for (const [page, read, run] of await reads(sql)) timings.push(await time(page, read, run));
    const plansText = await plans(url);
    const stamp = new Date().toISOString().replaceAll(":", "-").slice(0, 19);
    const dir = join(import.meta.dir, "..", "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${stamp}-ui-plans.txt`), `${plansText.join("\n")}\n`);
    const [version] = await sql`SELECT version() AS v`;
    const load = { before: loadBefore, after: loadavg() };
    const record = {
      tasks: TASKS,
      runs: RUNS,
      postgres: version?.v,
      cores: navigator.hardwareConcurrency,
      load,
      timings,
    };
    writeFileSync(join(dir, `${stamp}-ui.json`), `${JSON.stringify(record, null, 2)}\n`);
    const f = (x: number) => x.toFixed(1);
    const lines = [
      `${TASKS.toLocaleString("en-US")} tasks, median / p95 / max of ${RUNS} runs, ms (target: < 50); ` +
        `${navigator.hardwareConcurrency} cores, load average ${load.before.map((x) => x.toFixed(1)).join(" ")} before, ` +
        `${load.after.map((x) => x.toFixed(1)).join(" ")} after`,
      "| page | read | median | p95 | max |",
      "|---|---|---:|---:|---:|",
      ...timings.map(
        (t) => `| \`${t.page}\` | ${t.read} | ${f(t.median)} | ${f(t.p95)} | ${f(t.max)} |`,
      ),
    ];
    process.stdout.write(`${lines.join("\n")}\n\nplans: bench/results/${stamp}-ui-plans.txt\n`);
  } finally {
    await sql.end();
  }
}

await main();
