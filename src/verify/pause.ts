import { awaitProcState, procState } from "../platform/procfs";
import type { RoleProcess } from "../platform/supervisor";

/**
 * Pauses: SIGSTOP a role's process for a while, then SIGCONT it — a GC
 * pause, a VM migration, a laptop lid. The stop is confirmed from
 * /proc/<pid>/stat (state T) before it counts. Pauses of one role that
 * overlap end together, at the latest end; a process killed meanwhile is not
 * continued (its restarted successor never was stopped).
 */

/** What a pause needs of a role: its current process, and a way to signal it. */
export type Pausable = Pick<RoleProcess, "pid" | "signal">;

export class Pauser {
  private readonly until = new Map<number, { at: number; timer: ReturnType<typeof setTimeout> }>();

  /** Stops the role's current process for `ms`; says what /proc saw (undefined: not running). */
  async pause(role: Pausable, ms: number): Promise<{ pid: number; state: string } | undefined> {
    const pid = role.pid;
    if (pid < 0 || procState(pid) === undefined) return undefined;
    role.signal("SIGSTOP");
    await awaitProcState(pid, "T", 2_000);
    const state = procState(pid) ?? "gone";
    const at = Date.now() + ms;
    const previous = this.until.get(pid);
    if (previous === undefined || previous.at < at) {
      clearTimeout(previous?.timer);
      const timer = setTimeout(() => this.resume(role, pid), Math.max(0, at - Date.now()));
      this.until.set(pid, { at, timer });
    }
    return { pid, state };
  }

  /** Continues every paused process now (the run is ending). */
  resumeAll(roles: Iterable<Pausable>): void {
    for (const r of roles) {
      const entry = this.until.get(r.pid);
      if (entry === undefined) continue;
      clearTimeout(entry.timer);
      this.resume(r, r.pid);
    }
  }

  /** When the last pause ends (epoch ms), or 0. */
  get endsAt(): number {
    return Math.max(0, ...[...this.until.values()].map((e) => e.at));
  }

  private resume(role: Pausable, pid: number): void {
    this.until.delete(pid);
    if (role.pid === pid) role.signal("SIGCONT");
  }
}
