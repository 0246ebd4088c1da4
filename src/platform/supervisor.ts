import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { createLogger } from "../log";
import { selfArgv } from "./self";

/**
 * Runs harness roles as child processes of this one: each role's stderr goes
 * to its own log file, an unexpected exit is logged and (when asked) the role
 * is restarted, and stopAll ends them all with SIGTERM, then SIGKILL after a
 * grace period. Used by `harness up` and `harness verify`.
 */

export interface RoleSpec {
  name: string;
  args: string[];
  env: Record<string, string | undefined>;
  restart: boolean;
  /** The `msg` of the JSON log line a process of this role writes once it is up and working. */
  readyLog?: string;
}

/** One unexpected exit of a role's process. */
export interface RoleExit {
  pid: number;
  code: number;
  signal: string | undefined;
  /** The process had logged `readyLog` before it exited (it was past its start). */
  ready: boolean;
}

export interface RoleProcess {
  readonly spec: RoleSpec;
  readonly pid: number;
  readonly restarts: number;
  /** Every unexpected exit so far, oldest first. */
  readonly exits: readonly RoleExit[];
  /** The current process is alive (it may be stopped by SIGSTOP). */
  readonly running: boolean;
  /** The current process logged its `readyLog`. */
  readonly ready: boolean;
  /** Signals the current process of this role (e.g. SIGKILL for chaos, SIGSTOP/SIGCONT). */
  signal(sig: NodeJS.Signals): void;
  /** Stops the role for good: no restart afterwards. */
  stop(graceMs: number): Promise<void>;
}

const log = createLogger("supervisor");

export class Supervisor {
  private readonly roles: RoleEntry[] = [];
  private stopping = false;

  constructor(private readonly logDir: string) {
    mkdirSync(logDir, { recursive: true });
  }

  start(spec: RoleSpec): RoleProcess {
    const entry = new RoleEntry(spec, join(this.logDir, `${spec.name}.log`), () => this.stopping);
    this.roles.push(entry);
    entry.launch();
    return entry;
  }

  /** Every role's unexpected exits so far (crashes, kills), by name. */
  crashes(): Record<string, number> {
    return Object.fromEntries(this.roles.map((r) => [r.spec.name, r.crashes]));
  }

  async stopAll(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await Promise.all(this.roles.map((r) => r.stop(graceMs)));
  }
}

class RoleEntry implements RoleProcess {
  private proc: Subprocess<"ignore", "ignore", "pipe"> | undefined;
  private out: WriteStream;
  private stopped = false;
  private life = { ready: false };
  restarts = 0;
  crashes = 0;
  readonly exits: RoleExit[] = [];

  constructor(
    readonly spec: RoleSpec,
    logFile: string,
    private readonly supervisorStopping: () => boolean,
  ) {
    this.out = createWriteStream(logFile, { flags: "a" });
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  get ready(): boolean {
    return this.running && this.life.ready;
  }

  get running(): boolean {
    const proc = this.proc;
    return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
  }

  launch(): void {
    const proc = Bun.spawn([...selfArgv(), ...this.spec.args], {
      env: { ...process.env, ...this.spec.env },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    this.proc = proc;
    const life = { ready: false };
    this.life = life;
    const piped = this.pipe(proc, life);
    void proc.exited.then(async (code) => {
      await piped;
      this.onExit(proc, code, life.ready);
    });
  }

  private async pipe(proc: Subprocess<"ignore", "ignore", "pipe">, life: { ready: boolean }) {
    const ready = this.spec.readyLog;
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of proc.stderr) {
      this.out.write(chunk);
      if (ready === undefined || life.ready) continue;
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      life.ready = lines.some((line) => logMessage(line) === ready);
    }
  }

  private onExit(proc: Subprocess<"ignore", "ignore", "pipe">, code: number, ready: boolean) {
    if (this.proc !== proc) return;
    const expected = this.stopped || this.supervisorStopping();
    if (expected) return;
    this.crashes++;
    const signal = proc.signalCode === null ? undefined : String(proc.signalCode);
    this.exits.push({ pid: proc.pid, code, signal, ready });
    const fields = { role: this.spec.name, code, signal: proc.signalCode ?? undefined };
    if (!this.spec.restart) {
      log.warn("role exited", fields);
      return;
    }
    this.restarts++;
    log.warn("role exited; restarting", { ...fields, restarts: this.restarts });
    setTimeout(() => {
      if (!this.stopped && !this.supervisorStopping()) this.launch();
    }, 200);
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc?.kill(sig);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    const proc = this.proc;
    if (proc === undefined) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGCONT");
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await proc.exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => this.out.end(resolve));
  }
}

/** The `msg` of a JSON log line, if it is one. */
function logMessage(line: string): unknown {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && "msg" in parsed
      ? parsed.msg
      : undefined;
  } catch {
    return undefined;
  }
}
