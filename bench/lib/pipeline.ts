import type { Sql } from "../../src/db/connect";
import { type CpuGroup, CpuMeter, cpuPerItem, postgresMembers } from "./cpu";
import type { PgCounter } from "./pgstats";
import { since } from "./protocol";

/**
 * The timed span of an end-to-end subject (ours, or the graphile-worker
 * reference): its processes are up and idle, and have run a warm-up batch
 * of tasks, untimed (`warmUp`: they are long-running processes, and in a
 * span of a few seconds a cold JIT compiler was a fifth of a role's CPU);
 * then `begin` starts the work, and
 * the span ends when data.sink_batches accounts for every row (polled every
 * 10 ms). Over it: the CPU of each group of processes (and PostgreSQL's,
 * lib/cpu.ts), per task. `sql` is the subject's own session (its application
 * name `ownApplication`, left out of PostgreSQL's CPU); its statements are
 * counted on `counter` (lib/pgstats.ts, the statements and commits per task).
 */

/** Tasks in the warm-up before each end-to-end span. */
export const WARM_UP_TASKS = 200;

export interface PipelineRun<T> {
  sql: Sql;
  ownApplication: string;
  counter: PgCounter;
  tasks: number;
  rows: number;
  /** The subject's processes, by group ("dispatcher", "workers", "sink"…); PostgreSQL is added. */
  groups: Record<string, CpuGroup>;
  /** Starts the work; resolves when whatever it spawned is done (not waited on for the span). */
  begin(): Promise<T>;
  /** The untimed warm-up: `rows` of `tasks` tasks, started by `begin`, all stored before the span. */
  warmUp: { tasks: number; rows: number; begin(): Promise<unknown> };
  /** Throws if a process of the pipeline died. */
  alive(): void;
}

async function rowsIn(sql: Sql): Promise<number> {
  const [r] = await sql`SELECT coalesce(sum(rows_inserted), 0)::int AS rows FROM data.sink_batches`;
  return Number(r?.rows ?? 0);
}

/** Runs the warm-up to its last row (within a minute). */
async function warmUp<T>(o: PipelineRun<T>): Promise<void> {
  await o.warmUp.begin();
  const deadline = Date.now() + 60_000;
  while ((await o.counter.run(() => rowsIn(o.sql))) < o.warmUp.rows) {
    o.alive();
    if (Date.now() > deadline)
      throw new Error(`the warm-up's ${o.warmUp.rows} rows took over 60 s`);
    await Bun.sleep(10);
  }
}

export async function measurePipeline<T>(
  o: PipelineRun<T>,
): Promise<{ seconds: number; begun: Promise<T>; extra: Record<string, number> }> {
  const own = o.counter;
  await warmUp(o);
  const meter = new CpuMeter({
    postgres: { members: postgresMembers(o.sql, o.ownApplication, own) },
    ...o.groups,
  });
  await meter.start();
  const start = performance.now();
  const begun = o.begin();
  let beginSeconds = Number.NaN;
  void begun.then(() => {
    beginSeconds = since(start);
  });
  // One cheap poll (the reference gets the same): no other read competes with the pipeline.
  for (;;) {
    if ((await own.run(() => rowsIn(o.sql))) >= o.warmUp.rows + o.rows) break;
    o.alive();
    await Bun.sleep(10);
  }
  const seconds = since(start);
  const cpu = cpuPerItem(await meter.read(), o.tasks);
  return {
    seconds,
    begun,
    extra: {
      rows_per_s: o.rows / seconds,
      task_create_s: beginSeconds,
      ...cpu,
    },
  };
}
