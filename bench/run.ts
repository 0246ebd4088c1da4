import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runSubject } from "./lib/child";
import {
  environment,
  loadAverage,
  markdown,
  type SubjectRun,
  skipped,
  summarize,
} from "./lib/report";
import { runScratch } from "./lib/scratch";
import { openServer } from "./lib/server";
import { wrkVersion } from "./lib/wrk";
import { selectWorkloads } from "./workloads";
import type { Subject } from "./workloads/types";

/**
 * `bun run bench [-- WORKLOAD|GROUP ...] [--quick] [--rounds N]`
 *
 * Runs each selected workload for a fixed count, `rounds` times, subjects
 * interleaved (A B C, then C B A, ...) so drift hits all of them, each in its
 * own process on its own fresh database. Prints one markdown table of medians
 * and ratios and writes the whole record to bench/results/.
 */

const BENCH_DIR = import.meta.dir;

function ensureDependencies(): void {
  if (existsSync(join(BENCH_DIR, "node_modules", "pg-boss"))) return;
  console.error("bench: installing bench/ dependencies (pg-boss, graphile-worker)…");
  const r = spawnSync(process.execPath, ["install", "--frozen-lockfile", "--cwd", BENCH_DIR], {
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("bun install --frozen-lockfile --cwd bench failed");
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      quick: { type: "boolean", default: false },
      rounds: { type: "string" },
    },
    allowPositionals: true,
  });
  const quick = values.quick === true;
  const rounds = values.rounds === undefined ? (quick ? 1 : 3) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds takes a whole number ≥ 1");
  const workloads = selectWorkloads(positionals);
  ensureDependencies();

  const server = await openServer();
  const env = environment(server, BENCH_DIR, wrkVersion() ?? "no wrk");
  const log = (m: string) => console.error(`bench: ${m}`);
  log(
    `PostgreSQL ${server.version} at ${env.database}; ${rounds} round(s)${quick ? ", quick" : ""}; load average ${env.loadavg.start}`,
  );
  let failures = 0;
  const results = [];
  const scratch = runScratch();
  try {
    for (const workload of workloads) {
      const count = quick ? workload.quickCount : workload.count;
      const unavailable = workload.unavailable?.();
      if (unavailable !== undefined) {
        log(`${workload.id} SKIPPED: ${unavailable}`);
        results.push(skipped(workload, count, unavailable));
        continue;
      }
      const common = quick ? workload.common?.quick : workload.common?.full;
      const timeoutMs = workload.timeoutMs ?? (quick ? 60_000 : 180_000);
      const subjects: Subject[] = [workload.ours, ...workload.references];
      const runs: SubjectRun[] = [];
      for (let round = 1; round <= rounds; round++) {
        const order = round % 2 === 1 ? subjects : [...subjects].reverse();
        for (const subject of order) {
          const db = await server.createDatabase(subject.database, `${workload.id}_${subject.id}`);
          try {
            const m = await runSubject(
              subject.script,
              { url: db.url, count, options: { ...common, ...subject.options } },
              timeoutMs,
            );
            const perSecond = m.items / m.seconds;
            runs.push({ ...m, round, subject: subject.id, perSecond });
            log(
              `${workload.id} round ${round} ${subject.id}: ${Math.round(perSecond)} ${workload.unit}`,
            );
          } catch (error) {
            failures++;
            log(`${workload.id} round ${round} ${subject.id} FAILED: ${String(error)}`);
          } finally {
            await db.drop();
          }
        }
      }
      results.push(summarize({ ...workload, count }, runs));
    }
  } finally {
    scratch.remove();
    await server.close();
  }
  env.loadavg.end = loadAverage();

  const table = markdown(results, env, rounds);
  console.log(table);
  const dir = join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  const stamp = env.date.replace(/[:.]/g, "-").slice(0, 19);
  const name = `${stamp}-${positionals.length ? positionals.join("+") : "all"}${quick ? "-quick" : ""}.json`;
  const file = join(dir, name);
  writeFileSync(
    file,
    `${JSON.stringify({ environment: env, rounds, quick, results, table }, null, 2)}\n`,
  );
  log(`wrote ${file}`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
