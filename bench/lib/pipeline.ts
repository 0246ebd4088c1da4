import type { Sql } from "../../src/db/connect";
import { type CpuGroup, CpuMeter, cpuPerItem, postgresMembers } from "./cpu";
import type { PgCounter } from "./pgstats";
import { since } from "./protocol";

/**
 * The timed span of an end-to-end subject (ours, or the graphile-worker
 * reference): its processes are up and idle; `begin` starts the work, and
 * the span ends when data.sink_batches accounts for every row (polled every
 * 10 ms). Over it: the CPU of each group of processes (and PostgreSQL's,
 * lib/cpu.ts), per task. `sql` is the subject's own session (its application
 * name `ownApplication`, left out of PostgreSQL's CPU); its statements are
 * counted on `counter` (lib/pgstats.ts, the statements and commits per task).
 */

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
  /** Throws if a process of the pipeline died. */
  alive(): void;
}

async function rowsIn(sql: Sql): Promise<number> {
  const [r] = await sql`SELECT coalesce(sum(rows_inserted), 0)::int AS rows FROM data.sink_batches`;
  return Number(r?.rows ?? 0);
}

export async function measurePipeline<T>(
  o: PipelineRun<T>,
): Promise<{ seconds: number; begun: Promise<T>; extra: Record<string, number> }> {
  const own = o.counter;
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
    if ((await own.run(() => rowsIn(o.sql))) >= o.rows) break;
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
