import { connect } from "../../src/db/connect";
import { CpuMeter, postgresMembers } from "./cpu";
import { since } from "./protocol";

const METER_NAME = "bench-pg-cpu";

/**
 * The CPU PostgreSQL spends on one subject's database (its backends and the
 * server's background processes: cpu.ts postgresMembers) from now until
 * `stop`, in milliseconds.
 */
async function meterPostgres(url: string): Promise<{ stop(): Promise<number> }> {
  const sql = connect(url, { name: METER_NAME, max: 1 });
  const meter = new CpuMeter({
    postgres: { members: postgresMembers(sql, `harness-${METER_NAME}`) },
  });
  try {
    await meter.start();
  } catch (err) {
    await sql.end({ timeout: 1 });
    throw err;
  }
  return {
    async stop() {
      try {
        return (await meter.read()).postgres ?? Number.NaN;
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

/**
 * Runs a sink subject's timed part, `work` on `rows` rows in the subject's
 * own process (no role process of its own), and meters it: its seconds, and
 * the CPU per 1,000 rows of this process (`sink_js_ms_per_1000_rows`) and of
 * PostgreSQL (`postgres_ms_per_1000_rows`).
 */
export async function meteredRows(url: string, rows: number, work: () => Promise<unknown>) {
  const pg = await meterPostgres(url);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  await work();
  const seconds = since(start);
  const cpu = process.cpuUsage(cpu0);
  const pgMs = await pg.stop();
  return {
    seconds,
    cpu: {
      sink_js_ms_per_1000_rows: (cpu.user + cpu.system) / rows,
      postgres_ms_per_1000_rows: (pgMs * 1000) / rows,
    },
  };
}
