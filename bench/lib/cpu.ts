import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Sql } from "../../src/db/connect";

/**
 * CPU time per task, from the kernel's own accounting (FACTS.md, "Measuring
 * CPU per task"): `utime + stime` (fields 14 and 15 of /proc/<pid>/stat,
 * counted after the last ")" since the command name may hold spaces and
 * parentheses), in clock ticks. Unlike tasks/s it barely moves with machine
 * noise, so it says what a change costs.
 *
 * A meter follows named groups of processes ("postgres", "dispatcher",
 * "workers"…), each process with the children it has reaped (fields 16 and
 * 17, cutime and cstime) and, if asked, its live ones. A group's members are
 * looked up again as the run goes (PostgreSQL's backends come and go; see
 * postgresMembers). Read a meter before stopping the processes it follows.
 *
 *   const meter = new CpuMeter({ sink: { members: () => [sink.pid] }, … });
 *   await meter.start();  … run …;  const ms = await meter.read();  // CPU ms per group
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

/** CPU ticks of `pid` so far: its own and its reaped children's, and with `children` its live children's too. */
function ticksOf(pid: number, all: readonly ProcStat[], children: boolean): number | undefined {
  let ticks: number | undefined;
  for (const p of all) {
    if (p.pid === pid || (children && p.ppid === pid)) ticks = (ticks ?? 0) + p.self + p.reaped;
  }
  return ticks;
}

/** The processes of a group, asked again at every sample (a group's members may come and go). */
export type Members = () => readonly number[] | Promise<readonly number[]>;

export interface CpuGroup {
  members: Members;
  /** Count each member's live children with it (a role that runs task programs). */
  children?: boolean;
}

interface Seen {
  first: number;
  last: number;
}

/**
 * CPU per group of processes between `start` and `read`. Members are looked
 * up again every `sampleMs`, so a process that joins mid-run (a new
 * PostgreSQL backend) counts from its first tick, and one that exits counts
 * up to its last sample.
 */
export class CpuMeter {
  private readonly seen = new Map<string, Map<number, Seen>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private sampling: Promise<void> = Promise.resolve();
  private started = false;

  constructor(
    private readonly groups: Readonly<Record<string, CpuGroup>>,
    private readonly sampleMs = 250,
  ) {}

  private async sample(): Promise<void> {
    const members = await Promise.all(
      Object.entries(this.groups).map(async ([name, g]) => [name, g, await g.members()] as const),
    );
    const all = allProcesses();
    for (const [name, group, pids] of members) {
      const seen = this.seen.get(name) ?? new Map<number, Seen>();
      this.seen.set(name, seen);
      for (const pid of pids) {
        const ticks = ticksOf(pid, all, group.children === true);
        if (ticks === undefined) continue;
        const s = seen.get(pid);
        if (s === undefined) seen.set(pid, { first: this.started ? 0 : ticks, last: ticks });
        else s.last = ticks;
      }
    }
  }

  async start(): Promise<void> {
    await this.sample();
    this.started = true;
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample()).catch(() => {});
    }, this.sampleMs);
  }

  /** CPU milliseconds each group used since `start`; NaN for a group that never had a process. */
  async read(): Promise<Record<string, number>> {
    if (!this.started) throw new Error("CpuMeter.read before start");
    clearInterval(this.timer);
    await this.sampling;
    await this.sample();
    const out: Record<string, number> = {};
    for (const name of Object.keys(this.groups)) {
      const seen = [...(this.seen.get(name)?.values() ?? [])];
      const ticks = seen.reduce((n, s) => n + s.last - s.first, 0);
      out[name] = seen.length === 0 ? Number.NaN : (ticks * 1000) / CLOCK_TICKS;
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

/**
 * The PostgreSQL processes a run costs: every backend of the database `sql`
 * is connected to (the run's roles and clients; not `sql`'s own pool, named
 * `ownApplication`) and the server's background processes (WAL writer,
 * checkpointer, autovacuum…, which work for every database of the server).
 * Backends of other databases on the same server, other runs', are left out.
 * `counted`: tallies each look-up, one statement on that database (see pgstats.ts).
 */
export function postgresMembers(
  sql: Sql,
  ownApplication: string,
  counted?: { run<T>(q: () => Promise<T>): Promise<T> },
): Members {
  const run = counted === undefined ? <T>(q: () => Promise<T>) => q() : counted.run.bind(counted);
  return async () => {
    const rows = await run(
      () => sql`
      SELECT pid FROM pg_stat_activity
      WHERE (datname = current_database() OR datname IS NULL)
        AND coalesce(application_name, '') <> ${ownApplication}`,
    );
    return rows.map((r) => Number(r.pid));
  };
}
