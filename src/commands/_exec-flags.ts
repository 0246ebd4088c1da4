import { DEFAULT_OPEN_FILES, type ExecSettings } from "../worker/exec/setup";
import { intFlag, UsageError } from "./_command";

/**
 * `harness worker --exec CMD [ARGS…]` and its flags, into ExecSettings.
 * CMD comes from `--exec` or else TASK_COMMAND (split at whitespace); ARGS
 * are the positional arguments (after `--` when one starts with "-").
 * `--exec-env` may be given again and again: citty keeps only the last
 * value, so they are read from the raw arguments.
 */

export interface ExecFlagValues {
  exec: string | undefined;
  positionals: readonly string[];
  rawArgs: readonly string[];
  taskTimeout: string | undefined;
  graceMs: number;
  execMemory: string | undefined;
  execCpuSeconds: string | undefined;
  execUser: string | undefined;
  execNoNetwork: boolean;
}

export const DEFAULT_TASK_TIMEOUT = "1h";

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `1500ms`, `30s`, `10m`, `2h`: a unit is required, so nobody wonders which one a bare number means. */
export function durationFlag(name: string, value: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(value.trim());
  const unit = m?.[2] === undefined ? undefined : UNITS[m[2]];
  if (m?.[1] === undefined || unit === undefined) {
    throw new UsageError(
      `--${name} must be a duration like 1500ms, 30s, 10m or 2h, got ${JSON.stringify(value)}`,
    );
  }
  const ms = Number(m[1]) * unit;
  if (ms < 1 || ms > 7 * 24 * 3_600_000)
    throw new UsageError(`--${name} must be between 1ms and 7 days`);
  return ms;
}

const SIZES: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `512M`, `2G`, `65536K` or bytes; binary units. */
export function sizeFlag(name: string, value: string): number {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(value.trim());
  const unit = m?.[2] === undefined ? undefined : SIZES[m[2].toLowerCase()];
  if (m?.[1] === undefined || unit === undefined) {
    throw new UsageError(`--${name} must be a size like 512M or 2G, got ${JSON.stringify(value)}`);
  }
  const bytes = Number(m[1]) * unit;
  if (bytes < 16 * 1024 * 1024) throw new UsageError(`--${name} must be at least 16M`);
  return bytes;
}

/** Every value of a repeatable flag, `--name V` and `--name=V`, up to a `--`. */
export function repeated(rawArgs: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i];
    if (arg === "--") break;
    if (arg === `--${name}`) {
      const value = rawArgs[i + 1];
      if (value === undefined || value.startsWith("-"))
        throw new UsageError(`--${name} needs a NAME`);
      out.push(value);
      i++;
    } else if (arg?.startsWith(`--${name}=`)) out.push(arg.slice(name.length + 3));
  }
  return out;
}

function commandOf(
  f: ExecFlagValues,
  env: Record<string, string | undefined>,
): string[] | undefined {
  if (f.exec !== undefined) {
    if (f.exec.trim() === "") throw new UsageError("--exec needs a command");
    return [f.exec, ...f.positionals];
  }
  if (f.positionals.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(f.positionals[0])} (only --exec CMD takes arguments)`,
    );
  }
  const fromEnv = env.TASK_COMMAND?.trim();
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv.split(/\s+/);
}

/** The settings of `--exec`, or undefined for the default (synthetic) worker. */
export function execSettingsFrom(
  f: ExecFlagValues,
  env: Record<string, string | undefined>,
): ExecSettings | undefined {
  const command = commandOf(f, env);
  const passEnv = repeated(f.rawArgs, "exec-env");
  if (command === undefined) {
    const stray =
      f.taskTimeout !== undefined ||
      f.execMemory !== undefined ||
      f.execCpuSeconds !== undefined ||
      f.execUser !== undefined ||
      f.execNoNetwork ||
      passEnv.length > 0;
    if (stray)
      throw new UsageError(
        "--task-timeout and the --exec-… flags need --exec CMD (or TASK_COMMAND)",
      );
    return undefined;
  }
  return {
    command,
    taskTimeoutMs: durationFlag("task-timeout", f.taskTimeout ?? DEFAULT_TASK_TIMEOUT),
    graceMs: f.graceMs,
    passEnv,
    memoryBytes: f.execMemory === undefined ? undefined : sizeFlag("exec-memory", f.execMemory),
    cpuSeconds:
      f.execCpuSeconds === undefined
        ? undefined
        : intFlag("exec-cpu-seconds", f.execCpuSeconds, 1, 604_800),
    openFiles: DEFAULT_OPEN_FILES,
    user: f.execUser,
    noNetwork: f.execNoNetwork,
  };
}
