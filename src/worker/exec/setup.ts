import { accessSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import type { Logger } from "../../log";
import { DEFAULT_PATH, passedEnv } from "./env";
import { ExecSetupError } from "./errors";
import { sweepStaleHomes } from "./homes";
import { type Fence, type LaunchPlan, launchArgv, type RunAs } from "./launch";

/**
 * `harness worker --exec`: checks everything once, at start, and answers a
 * plan every attempt runs by — or one line saying why not (ExecSetupError).
 * Which fence the machine allows is found by running it once on `true`.
 */

export interface ExecSettings {
  /** CMD and its ARGS. */
  command: readonly string[];
  /** `--task-timeout`: a run longer than this is stopped and fails (retryable). */
  taskTimeoutMs: number;
  /** `--grace-ms`: between SIGTERM and SIGKILL of the program's process group. */
  graceMs: number;
  /** `--exec-env NAME`: variables passed on from the worker's environment. */
  passEnv: readonly string[];
  memoryBytes: number | undefined;
  cpuSeconds: number | undefined;
  openFiles: number;
  /** `--exec-user`: run the program as this user (the worker must be root). */
  user: string | undefined;
  noNetwork: boolean;
  /** Forces the process-group fence (tests of it); unset, the namespace fence is used where it works. */
  fence?: "group";
}

export interface ExecPlan {
  /** CMD resolved to an absolute path, then its ARGS. */
  command: string[];
  launch: LaunchPlan;
  taskTimeoutMs: number;
  graceMs: number;
  path: string;
  passed: Record<string, string>;
}

export const DEFAULT_OPEN_FILES = 1024;

export { ExecSetupError };

function which(name: string, path: string): string {
  const found = Bun.which(name, { PATH: path });
  if (found === null) throw new ExecSetupError(`--exec needs ${name} (util-linux) on PATH`);
  return found;
}

/** CMD as an absolute path: the program runs in a fresh folder, so a relative one would not resolve. */
function resolveCommand(cmd: string, path: string): string {
  if (cmd.includes("/")) {
    const abs = resolve(cmd);
    try {
      accessSync(abs, constants.X_OK);
    } catch {
      throw new ExecSetupError(`--exec ${cmd}: ${abs} is not an executable file`);
    }
    return abs;
  }
  const found = Bun.which(cmd, { PATH: path });
  if (found === null) throw new ExecSetupError(`--exec ${cmd}: not found on PATH`);
  return found;
}

function runAsOf(user: string): RunAs {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new ExecSetupError(`--exec-user needs the worker to run as root (it runs as uid ${uid})`);
  }
  const r = Bun.spawnSync(["getent", "passwd", user], { stdout: "pipe", stderr: "ignore" });
  const fields = r.stdout.toString().trim().split(":");
  const [name, , uidText, gidText] = fields;
  if (r.exitCode !== 0 || name === undefined || uidText === undefined || gidText === undefined) {
    throw new ExecSetupError(`--exec-user ${user}: no such user`);
  }
  return { name, uid: Number(uidText), gid: Number(gidText) };
}

/** Runs the launch chain once on `true`: the answer says whether the machine allows this fence. */
function probe(plan: LaunchPlan, path: string): { ok: true } | { ok: false; why: string } {
  const argv = launchArgv(plan, [which("true", path)]);
  const r = Bun.spawnSync(argv, {
    env: { PATH: path },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    timeout: 10_000,
  });
  if (r.exitCode === 0) return { ok: true };
  const why = r.stderr.toString().trim().split("\n")[0] ?? "";
  return { ok: false, why: why === "" ? `exit ${r.exitCode}` : why };
}

export function prepareExec(
  s: ExecSettings,
  env: Record<string, string | undefined>,
  log: Logger,
): ExecPlan {
  const [cmd, ...args] = s.command;
  if (cmd === undefined || cmd === "") throw new ExecSetupError("--exec needs a command");
  const path = env.PATH ?? DEFAULT_PATH;
  const command = [resolveCommand(cmd, path), ...args];
  const passed = passedEnv(s.passEnv, env);
  const tools = {
    setpriv: which("setpriv", path),
    prlimit: which("prlimit", path),
    unshare: Bun.which("unshare", { PATH: path }) ?? "",
    sh: which("sh", path),
  };
  const base: LaunchPlan = {
    fence: "namespace",
    tools,
    userNamespace: process.getuid?.() !== 0,
    noNetwork: s.noNetwork,
    limits: { openFiles: s.openFiles, memoryBytes: s.memoryBytes, cpuSeconds: s.cpuSeconds },
    runAs: s.user === undefined ? undefined : runAsOf(s.user),
  };
  sweepStaleHomes(tmpdir(), log);
  const fence = s.fence ?? chooseFence(base, path, log);
  if (fence === "group" && s.noNetwork) {
    throw new ExecSetupError("--exec-no-network needs the PID namespace fence (unshare)");
  }
  const launch = { ...base, fence };
  log.info("exec ready", {
    command,
    fence,
    user: launch.runAs?.name,
    no_network: s.noNetwork,
    limits: launch.limits,
    task_timeout_ms: s.taskTimeoutMs,
    passed_env: Object.keys(passed),
  });
  return { command, launch, taskTimeoutMs: s.taskTimeoutMs, graceMs: s.graceMs, path, passed };
}

function chooseFence(plan: LaunchPlan, path: string, log: Logger): Fence {
  const tried = plan.tools.unshare === "" ? undefined : probe(plan, path);
  if (tried?.ok === true) return "namespace";
  const why = tried === undefined ? "unshare not found" : tried.why;
  if (plan.noNetwork) {
    throw new ExecSetupError(`--exec-no-network needs unshare --net, refused here: ${why}`);
  }
  log.warn(
    "exec: no PID namespace here, falling back to a process group: a kill -9 of the worker reaches the program but not the processes it started",
    { reason: why },
  );
  return "group";
}
