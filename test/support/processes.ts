import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "./wait";

/**
 * Real role processes for tests: `bun src/cli.ts …`, or the compiled binary
 * when HARNESS_BIN is set. Every process started here is killed at the end
 * of the run (test/support/preload.ts), so none outlives its test.
 */

const ROOT = resolve(import.meta.dir, "..", "..");
const live = new Set<Subprocess>();

export function harnessArgv(): string[] {
  const bin = process.env.HARNESS_BIN;
  if (bin !== undefined && bin !== "") return [resolve(bin)];
  return [process.execPath, resolve(ROOT, "src/cli.ts")];
}

export interface Role {
  name: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every structured log line seen on stderr so far (non-JSON lines kept as {raw}). */
  logs: Array<Record<string, unknown>>;
  stdout(): string;
  stderr(): string;
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends a signal (default SIGTERM) and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
  exited: Promise<number>;
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  onText: (t: string) => void,
) {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true });
    onText(text);
    pending += text;
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  }
  if (pending) onLine(pending);
}

export function spawnHarness(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
  options: { cwd?: string; echo?: boolean } = {},
): Role {
  const proc = Bun.spawn([...harnessArgv(), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: "1", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  live.add(proc);
  const logs: Array<Record<string, unknown>> = [];
  let out = "";
  let err = "";
  const echo = options.echo ?? process.env.HARNESS_TEST_ECHO === "1";
  const stdoutDone = pump(
    proc.stdout,
    () => {},
    (t) => {
      out += t;
    },
  );
  const stderrDone = pump(
    proc.stderr,
    (line) => {
      if (echo) process.stderr.write(`[${name}] ${line}\n`);
      try {
        const parsed: unknown = JSON.parse(line);
        logs.push(typeof parsed === "object" && parsed !== null ? { ...parsed } : { raw: line });
      } catch {
        logs.push({ raw: line });
      }
    },
    (t) => {
      err += t;
    },
  );
  const exited = proc.exited.then(async (code) => {
    await Promise.allSettled([stdoutDone, stderrDone]);
    live.delete(proc);
    return code;
  });
  return {
    name,
    proc,
    logs,
    stdout: () => out,
    stderr: () => err,
    waitForLog: (match, what, timeoutMs = 15_000) =>
      waitFor(() => logs.find(match), { what: `${name}: ${what}`, timeoutMs }),
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    exited,
  };
}

/** Runs a harness command to completion and returns its output. */
export async function runHarness(
  args: string[],
  env: Record<string, string | undefined>,
  options: { cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const role = spawnHarness(args.join(" "), args, env, options);
  const code = await role.exited;
  return { code, stdout: role.stdout(), stderr: role.stderr() };
}

export async function killAllRoles(): Promise<void> {
  const running = [...live];
  for (const proc of running) {
    // A SIGSTOPped process ignores SIGKILL only until continued; SIGKILL works on stopped ones too.
    proc.kill("SIGKILL");
  }
  await Promise.allSettled(running.map((p) => p.exited));
}
