import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import type { Workload } from "../workloads/types";
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
}

export interface WorkloadResult {
  id: string;
  title: string;
  unit: string;
  count: number;
  ours: { label: string; value: number };
  comparisons: Comparison[];
  runs: SubjectRun[];
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
    };
  });
  return {
    id: workload.id,
    title: workload.title,
    unit: workload.unit,
    count: workload.count,
    ours: { label: workload.ours.label, value: median(ours.map((r) => r.perSecond)) },
    comparisons,
    runs,
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
}

export function environment(
  server: { version: string; settings: Record<string, string>; where: string; embedded: boolean },
  benchDir: string,
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
  };
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");

/** The one markdown table: a row per (workload, reference). */
export function markdown(results: readonly WorkloadResult[], env: Environment, rounds: number) {
  const lines = [
    `Benchmarks ${env.date.slice(0, 10)} — ${env.cores} cores (${env.cpu}), PostgreSQL ${env.postgres}` +
      ` (fsync ${env.postgresSettings.fsync ?? "?"}, synchronous_commit ${env.postgresSettings.synchronous_commit ?? "?"}),` +
      ` Bun ${env.bun}, postgres.js ${env.versions.postgres}, pg-boss ${env.versions["pg-boss"]},` +
      ` graphile-worker ${env.versions["graphile-worker"]}; median of ${rounds} round(s), interleaved.`,
    "",
    "| figure | ours | reference | ratio | target |",
    "|---|---:|---|---:|---|",
  ];
  for (const r of results) {
    for (const c of r.comparisons) {
      lines.push(
        `| ${r.title} (${r.count.toLocaleString("en-US")} msgs) | ${fmt(r.ours.value)} ${r.unit} | ` +
          `${c.label}: ${fmt(c.value)} ${r.unit} | ${c.ratio.toFixed(2)}× | ` +
          `≥ ${c.target}× ${c.met ? "met" : "**missed**"} |`,
      );
    }
  }
  return lines.join("\n");
}
