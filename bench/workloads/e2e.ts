import type { Check, Detail, Subject, Workload } from "./types";

/**
 * Workload 5: K tasks through dispatcher + workers + sink as separate
 * processes, from `task create` to the last row committed. No reference
 * runs beside it: its targets are absolute (tasks/s, peak RSS per role).
 */

const WORKERS = 2;
const CONCURRENCY = 32;
const SINK_CONCURRENCY = 4;

const details: Detail[] = [
  { key: "rows_per_s", label: "rows", unit: "rows/s" },
  { key: "rss_dispatcher_mib", label: "RSS dispatcher", unit: "MiB" },
  { key: "rss_worker_mib", label: "worker", unit: "MiB" },
  { key: "rss_sink_mib", label: "sink", unit: "MiB" },
];
const rss: Check = {
  key: "rss_max_mib",
  label: "peak RSS of the largest role",
  unit: "MiB",
  bound: "max",
  limit: 150,
};

const ours = (alerts: number): Subject => ({
  id: "ours",
  label: `${WORKERS} workers × concurrency ${CONCURRENCY}, sink concurrency ${SINK_CONCURRENCY}`,
  script: "subjects/e2e.ts",
  database: "state",
  options: {
    alerts,
    workers: WORKERS,
    concurrency: CONCURRENCY,
    sinkConcurrency: SINK_CONCURRENCY,
  },
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
  references: [],
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
  references: [],
  checks: [rss],
};
