import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * CPU time per task, from the kernel's own accounting (FACTS.md, "Measuring
 * CPU per task"): `utime + stime` (fields 14 and 15 of /proc/<pid>/stat,
 * counted after the last ")" since the command name may hold spaces and
 * parentheses), in clock ticks. Unlike tasks/s it barely moves with machine
 * noise, so it says what a change costs.
 *
 * A meter follows named groups of processes ("postgres", "dispatcher",
 * "workers"…). A group is a list of root processes; each root counts with
 * its live children and with the children it has already reaped (fields 16
 * and 17, cutime and cstime), so a PostgreSQL backend that exits mid-run
 * (a short-lived client's) is not lost: the postmaster's cutime takes it
 * over. Read a meter before stopping the processes it follows.
 *
 *   const meter = new CpuMeter({ postgres: () => [postmaster], sink: () => [sink.pid] });
 *   meter.start();  … run …;  const ms = meter.read();  // CPU ms per group since start
 */

/** Clock ticks per second (`getconf CLK_TCK`; 100 on Linux x64). */
export const CLOCK_TICKS = clockTicks();

function clockTicks(): number {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime: this process's own CPU, in ticks. */
  self: number;
  /** cutime + cstime: its reaped children's, in ticks. */
  reaped: number;
}

/** Parses the text of /proc/<pid>/stat. */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) throw new Error(`not a /proc stat line: ${text.slice(0, 80)}`);
  // After ")": field 3 (state) is index 0, so field N is index N - 3.
  const f = text
    .slice(close + 2)
    .trim()
    .split(" ")
    .map((x) => Number(x));
  const at = (field: number) => f[field - 3] ?? Number.NaN;
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: at(4),
    self: at(14) + at(15),
    reaped: at(16) + at(17),
  };
}

export function procStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Every process now, by pid. */
function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s !== undefined) out.push(s);
  }
  return out;
}

/** Pids of the processes whose command name (`/proc/<pid>/comm`) is `comm`. */
export function pidsOfComm(comm: string): number[] {
  return allProcesses()
    .filter((p) => p.comm === comm)
    .map((p) => p.pid);
}

/** The parent of a process (a PostgreSQL backend's is its postmaster). */
export function parentOf(pid: number): number | undefined {
  return procStat(pid)?.ppid;
}

/** The pids of processes listening on TCP `port` (IPv4 or IPv6), from /proc/net and each one's fds. */
export function pidsListening(port: number): number[] {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT", st 0A is LISTEN, inode is column 10.
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === "0A" && cols[9] !== undefined)
        inodes.add(cols[9]);
    }
  }
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    const listens = fds.some((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        return m?.[1] !== undefined && inodes.has(m[1]);
      } catch {
        return false;
      }
    });
    if (listens) pids.push(Number(name));
  }
  return pids;
}

/**
 * The CPU a process tree has used so far, in ticks: each root with what it
 * reaped, plus its live children with what they reaped. Monotonic while the
 * roots live: a child that exits moves from "live" to its parent's "reaped".
 */
export function treeTicks(roots: readonly number[], all = allProcesses()): number {
  const rootSet = new Set(roots);
  let ticks = 0;
  for (const p of all) {
    if (rootSet.has(p.pid) || rootSet.has(p.ppid)) ticks += p.self + p.reaped;
  }
  return ticks;
}

/** Where a group's root processes are, asked at start and again at the end. */
export type Roots = () => readonly number[];

export class CpuMeter {
  private started: Map<string, number> | undefined;

  constructor(private readonly groups: Readonly<Record<string, Roots>>) {}

  private ticks(): Map<string, number> {
    const all = allProcesses();
    return new Map(
      Object.entries(this.groups).map(([name, roots]) => [name, treeTicks(roots(), all)]),
    );
  }

  start(): void {
    this.started = this.ticks();
  }

  /** CPU milliseconds each group used since `start`; NaN for a group with no process. */
  read(): Record<string, number> {
    const begin = this.started;
    if (begin === undefined) throw new Error("CpuMeter.read before start");
    const end = this.ticks();
    const out: Record<string, number> = {};
    for (const [name, roots] of Object.entries(this.groups)) {
      const used = (end.get(name) ?? 0) - (begin.get(name) ?? 0);
      out[name] = roots().length === 0 ? Number.NaN : (used * 1000) / CLOCK_TICKS;
    }
    return out;
  }
}

/** `cpu_<group>_ms` per item (task), and `cpu_total_ms`, for a subject's `extra`. */
export function cpuPerItem(ms: Readonly<Record<string, number>>, items: number) {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, value] of Object.entries(ms)) {
    out[`cpu_${name}_ms`] = value / items;
    if (Number.isFinite(value)) total += value;
  }
  out.cpu_total_ms = total / items;
  return out;
}

/**
 * Waits until every process has used at most one tick of CPU over `quietMs`:
 * started up and idle (a role waiting on an empty queue polls, barely). For
 * roles that say nothing when ready at the bench's log level.
 */
export async function waitCpuQuiet(
  pids: readonly number[],
  o: { quietMs: number; timeoutMs: number },
): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const used = () => pids.map((pid) => procStat(pid)?.self ?? Number.NaN);
  let before = used();
  for (;;) {
    await Bun.sleep(o.quietMs);
    const now = used();
    if (now.some((t) => Number.isNaN(t))) throw new Error("a process ended while starting");
    if (now.every((t, i) => t - (before[i] ?? 0) <= 1)) return;
    if (Date.now() > deadline) throw new Error(`processes still busy after ${o.timeoutMs} ms`);
    before = now;
  }
}
