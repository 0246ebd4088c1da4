import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { Detail, Workload } from "../workloads/types";
import type { Measurement } from "./protocol";
import { median } from "./stats";

/** One subject's run in one round. */
export interface SubjectRun extends Measurement {
  round: number;
  subject: string;
  perSecond: number;
}

export interface Comparison {
  reference: string;
  label: string;
  /** Median of the reference's rounds. */
  value: number;
  /** Median of the per-round ratios ours / reference (pairs from the same round). */
  ratio: number;
  target: number;
  met: boolean;
  details: Record<string, number>;
}

export interface CheckResult {
  label: string;
  unit: string;
  bound: "max" | "min";
  limit: number;
  /** Median of ours' rounds. */
  value: number;
  met: boolean;
}

export interface WorkloadResult {
  id: string;
  title: string;
  unit: string;
  items: string;
  count: number;
  ours: { label: string; value: number; details: Record<string, number> };
  comparisons: Comparison[];
  checks: CheckResult[];
  details: Detail[];
  /** Why the workload did not run, when it did not. */
  skipped?: string;
  runs: SubjectRun[];
}

/** Medians of every `extra` figure of one subject's rounds. */
function medianExtras(runs: readonly SubjectRun[]): Record<string, number> {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.extra ?? {})));
  const out: Record<string, number> = {};
  for (const k of keys) {
    out[k] = median(runs.flatMap((r) => (r.extra?.[k] === undefined ? [] : [r.extra[k]])));
  }
  return out;
}

export function summarize(workload: Workload, runs: SubjectRun[]): WorkloadResult {
  const of = (id: string) => runs.filter((r) => r.subject === id);
  const ours = of(workload.ours.id);
  const comparisons = workload.references.map((ref) => {
    const refRuns = of(ref.id);
    const ratios = refRuns.flatMap((r) => {
      const mine = ours.find((o) => o.round === r.round);
      return mine === undefined ? [] : [mine.perSecond / r.perSecond];
    });
    const ratio = median(ratios);
    return {
      reference: ref.id,
      label: ref.label,
      value: median(refRuns.map((r) => r.perSecond)),
      ratio,
      target: ref.target,
      met: ratio >= ref.target,
      details: medianExtras(refRuns),
    };
  });
  const oursValue = median(ours.map((r) => r.perSecond));
  const oursDetails = medianExtras(ours);
  const figure = (r: SubjectRun, key: string) =>
    key === "rate" ? r.perSecond : (r.extra?.[key] ?? Number.NaN);
  const checks = (workload.checks ?? []).map((c) => {
    const relative = c.relativeTo;
    const value =
      relative === undefined
        ? c.key === "rate"
          ? oursValue
          : (oursDetails[c.key] ?? Number.NaN)
        : median(
            of(relative).flatMap((r) => {
              const mine = ours.find((o) => o.round === r.round);
              return mine === undefined ? [] : [figure(mine, c.key) / figure(r, c.key)];
            }),
          );
    return {
      label: c.label,
      unit: relative === undefined ? c.unit : "×",
      bound: c.bound,
      limit: c.limit,
      value,
      met: c.bound === "max" ? value <= c.limit : value >= c.limit,
    };
  });
  return {
    id: workload.id,
    title: workload.title,
    unit: workload.unit,
    items: workload.items ?? "msgs",
    count: workload.count,
    ours: { label: workload.ours.label, value: oursValue, details: oursDetails },
    comparisons,
    checks,
    details: workload.details ?? [],
    runs,
  };
}

/** A workload that could not run here: one row saying why. */
export function skipped(workload: Workload, count: number, reason: string): WorkloadResult {
  return {
    ...summarize({ ...workload, count, checks: [] }, []),
    comparisons: [],
    skipped: reason,
  };
}

function packageVersion(dir: string, name: string): string {
  try {
    const pkg: unknown = JSON.parse(
      readFileSync(join(dir, "node_modules", name, "package.json"), "utf8"),
    );
    return typeof pkg === "object" && pkg !== null && "version" in pkg ? String(pkg.version) : "?";
  } catch {
    return "?";
  }
}

export interface Environment {
  date: string;
  cores: number;
  cpu: string;
  memoryGiB: number;
  bun: string;
  postgres: string;
  postgresSettings: Record<string, string>;
  database: string;
  versions: Record<string, string>;
  /** /proc/loadavg at the start and the end of the run: the machine may be shared. */
  loadavg: { start: string; end?: string };
  wrk: string;
}

/** The 1, 5 and 15 minute load averages, or "?" off Linux. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

export function environment(
  server: { version: string; settings: Record<string, string>; where: string; embedded: boolean },
  benchDir: string,
  wrk: string,
): Environment {
  const root = join(benchDir, "..");
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    bun: Bun.version,
    postgres: server.version,
    postgresSettings: server.settings,
    database: server.embedded ? "embedded" : server.where,
    versions: {
      "pg-boss": packageVersion(benchDir, "pg-boss"),
      "graphile-worker": packageVersion(benchDir, "graphile-worker"),
      postgres: packageVersion(root, "postgres"),
    },
    loadavg: { start: loadAverage() },
    wrk,
  };
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a";

/** Decimal places of a check's figure, by unit (a ratio to a reference: "×"). */
const CHECK_DIGITS: Record<string, number> = { ms: 1, "×": 2 };

/** "12,345 req/s (p50 1.2 ms, p99 4.0 ms)". */
function cell(
  value: number,
  unit: string,
  details: readonly Detail[],
  extra: Record<string, number>,
) {
  const shown = details
    .filter((d) => extra[d.key] !== undefined)
    .map(
      (d) => `${d.label} ${fmt(extra[d.key] ?? Number.NaN, d.digits)}${d.unit ? ` ${d.unit}` : ""}`,
    );
  return `${fmt(value)} ${unit}${shown.length ? ` (${shown.join(", ")})` : ""}`;
}

const targetText = (c: { target: number; met: boolean }) =>
  c.target === 0 ? "— (shown for scale)" : `≥ ${c.target}× ${c.met ? "met" : "**missed**"}`;

/** The one markdown table: a row per (workload, reference). */
export function markdown(results: readonly WorkloadResult[], env: Environment, rounds: number) {
  const lines = [
    `Benchmarks ${env.date.slice(0, 10)} — ${env.cores} cores (${env.cpu}), PostgreSQL ${env.postgres}` +
      ` (fsync ${env.postgresSettings.fsync ?? "?"}, synchronous_commit ${env.postgresSettings.synchronous_commit ?? "?"}),` +
      ` Bun ${env.bun}, postgres.js ${env.versions.postgres}, pg-boss ${env.versions["pg-boss"]},` +
      ` graphile-worker ${env.versions["graphile-worker"]}, ${env.wrk}; median of ${rounds} round(s), interleaved;` +
      ` load average ${env.loadavg.start} at the start, ${env.loadavg.end ?? "?"} at the end.`,
    "",
    "| figure | ours | reference | ratio | target |",
    "|---|---:|---|---:|---|",
  ];
  for (const r of results) {
    const title = `${r.title} (${r.count.toLocaleString("en-US")} ${r.items})`;
    if (r.skipped !== undefined) {
      lines.push(`| ${title} | skipped: ${r.skipped} | | | |`);
      continue;
    }
    const ours = cell(r.ours.value, r.unit, r.details, r.ours.details);
    for (const c of r.comparisons) {
      lines.push(
        `| ${title} | ${ours} | ${c.label}: ${cell(c.value, r.unit, r.details, c.details)} | ` +
          `${c.ratio.toFixed(2)}× | ${targetText(c)} |`,
      );
    }
    if (r.comparisons.length === 0) lines.push(`| ${title} | ${ours} | — | — | — |`);
    for (const k of r.checks) {
      lines.push(
        `| ${title}: ${k.label} | ${fmt(k.value, CHECK_DIGITS[k.unit] ?? 0)} ${k.unit} | — | — | ` +
          `${k.bound === "max" ? "≤" : "≥"} ${fmt(k.limit, k.unit === "×" ? 1 : 0)} ${k.unit} ${k.met ? "met" : "**missed**"} |`,
      );
    }
  }
  return [...lines, ...cpuTable(results)].join("\n");
}

const CPU_KEY = /^cpu_(.+)_ms$/;

/**
 * CPU milliseconds per item of each process group (../lib/cpu.ts), a row
 * per subject that measured it: the medians of its `cpu_<group>_ms` extras.
 * Empty when no subject did.
 */
export function cpuTable(results: readonly WorkloadResult[]): string[] {
  const rows = results.flatMap((r) => [
    { title: r.title, label: r.ours.label, details: r.ours.details },
    ...r.comparisons.map((c) => ({ title: r.title, label: c.label, details: c.details })),
  ]);
  const groupsOf = (d: Record<string, number>) =>
    Object.keys(d).flatMap((k) => {
      const g = CPU_KEY.exec(k)?.[1];
      return g === undefined || g === "total" ? [] : [g];
    });
  // In the order of the subject that measured the most groups, then any others.
  const byReach = [...rows].sort((a, b) => groupsOf(b.details).length - groupsOf(a.details).length);
  const groups = [...new Set(byReach.flatMap((row) => groupsOf(row.details)))];
  const measured = rows.filter((row) => "cpu_total_ms" in row.details);
  if (measured.length === 0) return [];
  const value = (d: Record<string, number>, g: string) => {
    const v = d[`cpu_${g}_ms`];
    return v === undefined || !Number.isFinite(v) ? "—" : fmt(v, 2);
  };
  const heads = [...groups, "total", "statements", "commits"];
  return [
    "",
    "CPU per task, in ms (utime + stime from /proc over the timed span; each group with its children);" +
      " statements (pg_stat_statements calls, BEGIN/COMMIT included) and commits (pg_stat_database.xact_commit)" +
      " of the run's database per task, the bench's own polls taken off:",
    "",
    `| figure | subject | ${heads.join(" | ")} |`,
    `|---|---|${heads.map(() => "---:").join("|")}|`,
    ...measured.map(
      (row) =>
        `| ${row.title} | ${row.label} | ${[...groups, "total"].map((g) => value(row.details, g)).join(" | ")} | ` +
        `${statementsCell(row.details)} | ${perTask(row.details.commits_per_task)} |`,
    ),
  ];
}

const perTask = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "—" : fmt(v, 1);

/**
 * Statements per task (the median of the rounds that have it), or why not: no
 * pg_stat_statements on the server, or it evicted entries during every
 * round (a shared server's other databases fill it up); flagged when it did
 * so in some rounds.
 */
function statementsCell(d: Record<string, number>): string {
  if (d.pg_stat_statements === 0) return "— (no pg_stat_statements)";
  const v = d.statements_per_task;
  if (v === undefined || !Number.isFinite(v)) return "— (pg_stat_statements evicted entries)";
  return (d.pg_stat_statements_evicted ?? 0) > 0
    ? `${perTask(v)} (some rounds evicted)`
    : perTask(v);
}
