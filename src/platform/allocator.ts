import { selfArgv } from "./self";

/**
 * The long-running roles run with mimalloc's purging of freed memory off.
 * Bun's allocator hands freed pages back to the kernel (madvise) shortly
 * after they are freed, and a role that frees and allocates all the time
 * then pays for it twice: the call, and a page fault for every page it
 * touches again, with a TLB shootdown across cores in a virtual machine.
 * On the 2-core bench machine (a Firecracker VM) the sink spent half its
 * CPU there; end to end (bench e2e-10) turning it off took the dispatcher
 * from about 0.9 to 0.6 CPU ms per task, the workers from 1.9 to 1.2 and
 * the sink from 0.8 to 0.4, in alternating rounds. A purge delay of 1 s or
 * 10 s bought nothing measurable; only "never" did. The cost: a role's
 * resident memory stays at its peak rather than shrinking when idle, and
 * every role's peak is capped by its own limits (the sink's bytes in hand,
 * the worker's concurrency).
 *
 * mimalloc reads MIMALLOC_PURGE_DELAY once, when the process starts, so
 * the role executes itself again (same pid, same arguments, same open
 * files) with it set, before anything else is loaded. Whoever sets
 * MIMALLOC_PURGE_DELAY themselves keeps their value, and nothing is
 * executed again.
 */

export const PURGE_DELAY_ENV = "MIMALLOC_PURGE_DELAY";
/** Never purge. */
export const PURGE_NEVER = "-1";
const ROLES: ReadonlySet<string> = new Set(["dispatcher", "worker", "sink"]);

/** Whether `argv` (without the executable and entry) starts a long-running role. */
export function startsRole(argv: readonly string[]): boolean {
  const command = argv.find((a) => !a.startsWith("-"));
  return command !== undefined && ROLES.has(command);
}

/**
 * For a role whose allocator is not tuned yet, replaces this process with
 * the same command, tuned; returns only when there is nothing to do or the
 * platform cannot (then the role runs untuned, as it would have anyway).
 */
export function tuneAllocator(argv: readonly string[]): void {
  if (process.env[PURGE_DELAY_ENV] !== undefined || !startsRole(argv)) return;
  if (process.platform === "win32" || typeof process.execve !== "function") return;
  try {
    process.execve(process.execPath, [...selfArgv(), ...argv], {
      ...process.env,
      [PURGE_DELAY_ENV]: PURGE_NEVER,
    });
  } catch {
    // Not replaced: run as we are.
  }
}
