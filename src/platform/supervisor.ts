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
}

export interface RoleProcess {
  readonly spec: RoleSpec;
  readonly pid: number;
  readonly restarts: number;
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
  restarts = 0;
  crashes = 0;

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

  launch(): void {
    const proc = Bun.spawn([...selfArgv(), ...this.spec.args], {
      env: { ...process.env, ...this.spec.env },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    this.proc = proc;
    void this.pipe(proc);
    void proc.exited.then((code) => this.onExit(proc, code));
  }

  private async pipe(proc: Subprocess<"ignore", "ignore", "pipe">): Promise<void> {
    for await (const chunk of proc.stderr) this.out.write(chunk);
  }

  private onExit(proc: Subprocess<"ignore", "ignore", "pipe">, code: number): void {
    if (this.proc !== proc) return;
    const expected = this.stopped || this.supervisorStopping();
    if (expected) return;
    this.crashes++;
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
    const proc = this.proc;
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
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
