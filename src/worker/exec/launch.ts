/**
 * How a task program is started: the argv of a chain of util-linux tools
 * around `CMD ARGS…`, so that the program can never outlive the worker and
 * runs under its limits. Pure: ./setup.ts decides the fence and finds the
 * tools; ./child.ts spawns the argv in a session (process group) of its own.
 *
 * Fence "namespace" (where `unshare --pid` works):
 *
 *   setpriv --pdeathsig KILL --             dies with the worker, even on kill -9
 *     unshare --pid --fork --kill-child …   a PID namespace of its own: when its
 *       sh -c 'exec 3<&0; "$@" <&3 …'       init (this sh) dies, the kernel kills
 *         prlimit --nofile … [--as --cpu] --  every process in it, even ones that
 *           [setpriv --reuid … --]              left the process group
 *             CMD ARGS…
 *
 * The sh is PID 1 of the namespace and stays root; the program is its child,
 * so a SIGTERM to the process group reaches the program (PID 1 itself
 * ignores signals it has no handler for). Its stdin goes through fd 3 so the
 * program keeps the payload: an asynchronous list gets /dev/null otherwise
 * (and dash takes a plain `<&0` for no redirection at all). It unsets the
 * PWD it exports, so the program's environment is exactly the wrapper's.
 *
 * Fence "group" (no `unshare --pid`, e.g. a container without CAP_SYS_ADMIN):
 *
 *   prlimit … -- setpriv --pdeathsig KILL [--reuid …] -- CMD ARGS…
 *
 * The program dies with the worker; its own children stay in its process
 * group, which the wrapper kills whenever the program ends or is stopped, but
 * a kill -9 of the worker reaches only the program itself.
 */

export type Fence = "namespace" | "group";

export interface Limits {
  /** RLIMIT_NOFILE: open files. */
  openFiles: number;
  /** RLIMIT_AS in bytes (address space), when set. */
  memoryBytes: number | undefined;
  /** RLIMIT_CPU in seconds, when set: SIGXCPU at the limit, SIGKILL a second later. */
  cpuSeconds: number | undefined;
}

/** Another user to run the program as (only when the worker runs as root). */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

export interface LaunchPlan {
  fence: Fence;
  /** Absolute paths of the tools. */
  tools: { setpriv: string; prlimit: string; unshare: string; sh: string };
  /** The namespace fence runs unprivileged through a user namespace (`--map-current-user`). */
  userNamespace: boolean;
  noNetwork: boolean;
  limits: Limits;
  runAs: RunAs | undefined;
}

/** argv[0] of the namespace's init, as `ps` shows it. */
export const INIT_NAME = "harness-exec-init";
/** The namespace's init: runs the rest of its argv as a child, and exits with its status. */
export const INIT_SCRIPT = 'unset PWD; exec 3<&0; "$@" <&3 3<&- & wait $!';

function prlimitArgs(plan: LaunchPlan): string[] {
  const { openFiles, memoryBytes, cpuSeconds } = plan.limits;
  return [
    plan.tools.prlimit,
    `--nofile=${openFiles}`,
    ...(memoryBytes === undefined ? [] : [`--as=${memoryBytes}`]),
    ...(cpuSeconds === undefined ? [] : [`--cpu=${cpuSeconds}:${cpuSeconds + 1}`]),
    "--",
  ];
}

function runAsArgs(runAs: RunAs): string[] {
  return [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, "--init-groups", "--no-new-privs"];
}

export function unshareArgs(plan: LaunchPlan): string[] {
  return [
    plan.tools.unshare,
    ...(plan.userNamespace ? ["--map-current-user"] : []),
    "--pid",
    "--fork",
    "--kill-child=KILL",
    "--mount-proc",
    ...(plan.noNetwork ? ["--net"] : []),
    "--",
  ];
}

/** The whole argv for one run of `command` (CMD and its ARGS). */
export function launchArgv(plan: LaunchPlan, command: readonly string[]): string[] {
  const { setpriv } = plan.tools;
  if (plan.fence === "group") {
    const user = plan.runAs === undefined ? [] : runAsArgs(plan.runAs);
    return [...prlimitArgs(plan), setpriv, "--pdeathsig", "KILL", ...user, "--", ...command];
  }
  const user = plan.runAs === undefined ? [] : [setpriv, ...runAsArgs(plan.runAs), "--"];
  return [
    setpriv,
    "--pdeathsig",
    "KILL",
    "--",
    ...unshareArgs(plan),
    plan.tools.sh,
    "-c",
    INIT_SCRIPT,
    INIT_NAME,
    ...prlimitArgs(plan),
    ...user,
    ...command,
  ];
}
