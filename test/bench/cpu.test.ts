import { afterAll, describe, expect, test } from "bun:test";
import { CpuMeter, parseStat, procStat } from "../../bench/lib/cpu";
import { waitFor } from "../support/wait";

/**
 * The CPU-per-task meter of the benchmarks (bench/lib/cpu.ts): it parses
 * /proc/<pid>/stat whatever the command name holds, and a group counts the
 * CPU of a child that has already exited (through its parent's cutime), as
 * PostgreSQL's postmaster does for backends that come and go mid-run.
 */

const spawned: Array<{ kill(signal?: number): void }> = [];
afterAll(() => {
  for (const p of spawned) p.kill(9);
});

/** A bun process that burns `ms` of its own CPU, then exits (CPU, not wall time: a busy machine only slows it). */
const burn = (ms: number) =>
  `${process.execPath} -e 'const s = process.cpuUsage(); for (;;) { const u = process.cpuUsage(s); if (u.user + u.system >= ${ms * 1000}) break; }'`;

describe("bench CPU meter", () => {
  test("parses a stat line whose command name holds spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[4 - 3] = "77"; // ppid
    fields[14 - 3] = "120"; // utime
    fields[15 - 3] = "30"; // stime
    fields[16 - 3] = "7"; // cutime
    fields[17 - 3] = "3"; // cstime
    const s = parseStat(`4242 (a (b) c) ${fields.join(" ")}`);
    expect(s).toEqual({ pid: 4242, comm: "a (b) c", ppid: 77, self: 150, reaped: 10 });
    expect(procStat(process.pid)?.pid).toBe(process.pid);
  });

  test("a group counts its children's CPU, those that already exited too; an idle process counts about nothing", async () => {
    const parent = Bun.spawn(["sh", "-c", `${burn(300)}; exec sleep 60`], {
      stdout: "ignore",
      stderr: "ignore",
    });
    const idle = Bun.spawn(["sleep", "60"]);
    spawned.push(parent, idle);
    const meter = new CpuMeter({ parent: () => [parent.pid], idle: () => [idle.pid] });
    meter.start();
    // Once the shell exec'd sleep, the burner has exited and the shell reaped it.
    await waitFor(() => procStat(parent.pid)?.comm === "sleep", {
      what: "the burning child to exit",
      timeoutMs: 60_000,
    });
    const used = meter.read();
    expect(used.parent).toBeGreaterThanOrEqual(250);
    expect(used.idle).toBeLessThanOrEqual(20);
  }, 90_000);
});
