import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Fields, Logger } from "../../../src/log";
import { FileObjectStore } from "../../../src/objectstore/file";
import {
  type ExecDeps,
  type ExecOutcome,
  type ExecTask,
  runExec,
} from "../../../src/worker/exec/run";
import {
  DEFAULT_OPEN_FILES,
  type ExecPlan,
  type ExecSettings,
  prepareExec,
} from "../../../src/worker/exec/setup";
import { tempDir } from "../../support/temp";

/** Shared pieces of the task-program tests: programs, stores, logs, the process table. */

/** Every test file using these helpers calls `afterAll(removeTempDirs)`. */
export { removeTempDirs, tempDir } from "../../support/temp";

let programs: string | undefined;

function programsDir(): string {
  if (programs === undefined || !existsSync(programs)) {
    programs = tempDir("harness-exec-programs-");
    // Readable by every user: --exec-user runs them as nobody.
    chmodSync(programs, 0o755);
  }
  return programs;
}

/** An executable `#!/bin/sh` script with this body; its absolute path. */
export function program(name: string, body: string): string {
  const path = join(programsDir(), name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A line the AlertLine contract accepts once the wrapper adds org_id and dedupe_key. */
export const LINE = JSON.stringify({
  source: "test",
  severity: "low",
  title: "a line",
  occurred_at: "2024-01-01T00:00:00Z",
});

export const TASK: ExecTask = {
  task_id: "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f",
  org_id: "acme",
  attempt: 1,
  payload: { hello: "world" },
};

export interface Logged {
  level: string;
  msg: string;
  fields: Fields;
}

/** A Logger that keeps its lines, for tests to look at. */
export function memoryLogger(
  lines: Logged[] = [],
  base: Fields = {},
): Logger & { lines: Logged[] } {
  const at =
    (level: string) =>
    (msg: string, fields: Fields = {}) =>
      void lines.push({ level, msg, fields: { ...base, ...fields } });
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => memoryLogger(lines, { ...base, ...fields }),
  };
}

export function settings(command: string[], over: Partial<ExecSettings> = {}): ExecSettings {
  return {
    command,
    taskTimeoutMs: 20_000,
    graceMs: 500,
    passEnv: [],
    memoryBytes: undefined,
    cpuSeconds: undefined,
    openFiles: DEFAULT_OPEN_FILES,
    user: undefined,
    noNetwork: false,
    ...over,
  };
}

export interface TestStore {
  url: string;
  dir: string;
  store: FileObjectStore;
  /** Every file under the store's root (temp files included), relative paths. */
  files(): string[];
}

export async function tempStore(): Promise<TestStore> {
  const dir = tempDir("harness-exec-objects-");
  const url = pathToFileURL(dir).href;
  return {
    url,
    dir,
    store: await FileObjectStore.open(url),
    files: () =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1)),
  };
}

export interface Ran {
  outcome: ExecOutcome;
  log: Logger & { lines: Logged[] };
  plan: ExecPlan;
}

/** Prepares and runs one attempt of `command` in this process. */
export async function run(
  command: string[],
  o: {
    store: TestStore;
    settings?: Partial<ExecSettings>;
    env?: Record<string, string | undefined>;
    task?: Partial<ExecTask>;
    stop?: AbortSignal;
    deps?: Partial<ExecDeps>;
  },
): Promise<Ran> {
  const log = memoryLogger();
  const plan = prepareExec(settings(command, o.settings), o.env ?? process.env, log);
  const deps: ExecDeps = {
    store: o.store.store,
    log,
    maxBatchBytes: 64 * 1024 * 1024,
    maxBatches: 16,
    ...o.deps,
  };
  const task = { ...TASK, ...o.task };
  const outcome = await runExec(plan, task, deps, o.stop ?? new AbortController().signal);
  return { outcome, log, plan };
}

/** One process as /proc shows it. */
export interface Proc {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  /** Start time in clock ticks since boot: with the pid, names a process for good. */
  start: number;
  comm: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const f = stat.slice(close + 2).split(" ");
    return {
      pid,
      comm,
      state: f[0] ?? "?",
      ppid: Number(f[1]),
      pgrp: Number(f[2]),
      start: Number(f[19]),
    };
  } catch {
    return undefined;
  }
}

export function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name));
    if (p !== undefined) out.push(p);
  }
  return out;
}

/** Every process below `pid` (children, their children…), as they are now. */
export function descendants(pid: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const parents = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Still running: the same process (pid and start time), and not a zombie waiting to be reaped. */
export function alive(p: Proc): boolean {
  const now = readProc(p.pid);
  return now !== undefined && now.start === p.start && now.state !== "Z";
}

export function alivePids(procs: readonly Proc[]): number[] {
  return procs.filter(alive).map((p) => p.pid);
}

/** Kills test leftovers by pid (the ones a test started), never by name. */
export function killAll(procs: readonly Proc[]): void {
  for (const p of procs) {
    if (!alive(p)) continue;
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

export const FIXTURE = resolve(import.meta.dir, "fixtures/run-once.ts");
