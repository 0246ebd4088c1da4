import type { Check, Detail, Reference, Subject, Workload } from "./types";

/**
 * Workload 5: K tasks through dispatcher + workers + sink as separate
 * processes, from `task create` to the last row committed. Its targets are
 * absolute (tasks/s, peak RSS per role) and, for 10 alerts per task, 2× the
 * graphile-worker pipeline. Beside it, for scale, the same run with the
 * queues on NATS JetStream. All report the CPU each process spent per task
 * and the statements and commits of the run's database per task (the
 * table's "CPU per task" part).
 */

const WORKERS = 2;
const CONCURRENCY = 32;
const SINK_CONCURRENCY = 4;

const details: Detail[] = [
  { key: "rows_per_s", label: "rows", unit: "rows/s" },
  { key: "rss_dispatcher_mib", label: "RSS dispatcher", unit: "MiB" },
  { key: "rss_worker_mib", label: "worker", unit: "MiB" },
  { key: "rss_sink_mib", label: "sink", unit: "MiB" },
  { key: "cpu_total_ms", label: "CPU", unit: "ms/task", digits: 2 },
  { key: "statements_per_task", label: "statements", unit: "/task", digits: 1 },
  { key: "commits_per_task", label: "commits", unit: "/task", digits: 1 },
];
const rss: Check = {
  key: "rss_max_mib",
  label: "peak RSS of the largest role",
  unit: "MiB",
  bound: "max",
  limit: 150,
};

const options = (alerts: number, nats: 0 | 1) => ({
  alerts,
  workers: WORKERS,
  concurrency: CONCURRENCY,
  sinkConcurrency: SINK_CONCURRENCY,
  nats,
});

const ours = (alerts: number): Subject => ({
  id: "ours",
  label: `pgqueue, ${WORKERS} workers × concurrency ${CONCURRENCY}, sink concurrency ${SINK_CONCURRENCY}`,
  script: "subjects/e2e.ts",
  database: "state",
  options: options(alerts, 0),
});

/** The same pipeline, the queues on NATS (BENCH_NATS_URL, default the local nats-server). */
const onNats = (alerts: number): Reference => ({
  id: "nats",
  label: "the same with the queues on NATS JetStream",
  script: "subjects/e2e.ts",
  database: "state",
  options: options(alerts, 1),
  target: 0,
});

/**
 * What a user would build instead: the same work on graphile-worker 0.18
 * (../graphile/role.ts), 2 worker processes × 16 and a sink process × 4, no
 * leases, fencing, tokens or outbox. Ours must reach 2× its tasks/s.
 */
const GRAPHILE_CONCURRENCY = 16;
const onGraphile = (alerts: number): Reference => ({
  id: "graphile",
  label: `graphile-worker pipeline (make_batch ${WORKERS} × ${GRAPHILE_CONCURRENCY}, ingest_batch 1 × ${SINK_CONCURRENCY}; no leases, fencing or outbox)`,
  script: "subjects/e2e-graphile.ts",
  database: "state",
  options: { ...options(alerts, 0), concurrency: GRAPHILE_CONCURRENCY },
  target: 2,
});

export const e2eSmall: Workload = {
  id: "e2e-10",
  group: "e2e",
  title: `end to end, 10 alerts per task, ${WORKERS} workers × ${CONCURRENCY}`,
  unit: "tasks/s",
  items: "tasks",
  count: 2_000,
  quickCount: 500,
  details,
  ours: ours(10),
  references: [onGraphile(10), onNats(10)],
  checks: [{ key: "rate", label: "tasks/s", unit: "tasks/s", bound: "min", limit: 500 }, rss],
};

export const e2eLarge: Workload = {
  id: "e2e-100",
  group: "e2e",
  title: `end to end, 100 alerts per task, ${WORKERS} workers × ${CONCURRENCY}`,
  unit: "tasks/s",
  items: "tasks",
  count: 1_000,
  quickCount: 200,
  details,
  ours: ours(100),
  references: [onNats(100)],
  checks: [rss],
};
