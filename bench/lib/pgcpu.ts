import { connect } from "../../src/db/connect";
import { CpuMeter, postgresMembers } from "./cpu";

const METER_NAME = "bench-pg-cpu";

/**
 * The CPU PostgreSQL spends on one subject's database (its backends and the
 * server's background processes: cpu.ts postgresMembers) from now until
 * `stop`, in milliseconds. For the subjects that run no role process of
 * their own: their timed part is one loop in the subject's process.
 */
export async function meterPostgres(url: string): Promise<{ stop(): Promise<number> }> {
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
