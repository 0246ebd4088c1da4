import { readdirSync, readFileSync } from "node:fs";
import { sleep } from "../sleep";

/**
 * What Linux's /proc says about a process: its scheduler state (`T` once a
 * SIGSTOP took hold), its resident memory and its open file descriptors.
 * Each answers undefined when the process is gone (or /proc is not there).
 */

/** The state letter of /proc/<pid>/stat: R running, S sleeping, T stopped, Z zombie… */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: the state follows the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

export interface ProcResources {
  pid: number;
  rssKb: number;
  fds: number;
}

export function procResources(pid: number): ProcResources | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { pid, rssKb: rss === undefined ? 0 : Number(rss), fds };
  } catch {
    return undefined;
  }
}

/** Polls until the process is in `state` (or gone); true when it got there within `timeoutMs`. */
export async function awaitProcState(pid: number, state: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = procState(pid);
    if (now === state) return true;
    if (now === undefined || Date.now() > deadline) return false;
    await sleep(5);
  }
}
