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

/** Bun code that burns `ms` of its own CPU, then exits (CPU, not wall time: a busy machine only slows it). */
const burning = (ms: number) =>
  `const s = process.cpuUsage(); for (;;) { const u = process.cpuUsage(s); if (u.user + u.system >= ${ms * 1000}) break; }`;
const burn = (ms: number) => `${process.execPath} -e '${burning(ms)}'`;

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
    const meter = new CpuMeter({
      parent: { members: () => [parent.pid] },
      idle: { members: () => [idle.pid] },
    });
    await meter.start();
    // Once the shell exec'd sleep, the burner has exited and the shell reaped it.
    await waitFor(() => procStat(parent.pid)?.comm === "sleep", {
      what: "the burning child to exit",
      timeoutMs: 60_000,
    });
    const used = await meter.read();
    expect(used.parent).toBeGreaterThanOrEqual(250);
    expect(used.idle).toBeLessThanOrEqual(20);
  }, 90_000);

  test("a member that joins after the start and exits before the end counts up to its last sample", async () => {
    const members: number[] = [];
    const meter = new CpuMeter({ comers: { members: () => members } }, 20);
    await meter.start();
    const comer = Bun.spawn([process.execPath, "-e", burning(300)], {
      stdout: "ignore",
      stderr: "ignore",
    });
    spawned.push(comer);
    members.push(comer.pid);
    await comer.exited;
    const used = await meter.read();
    // Whatever it burned after the last sample (at most 20 ms of wall time) is lost.
    expect(used.comers).toBeGreaterThanOrEqual(200);
    expect(used.comers).toBeLessThanOrEqual(600);
  }, 90_000);
});
