import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../test/support/embedded";
import { type Role, spawnHarness } from "../../test/support/processes";
import { waitFor } from "../../test/support/wait";
import { ALLOCATOR_ENV } from "./allocator";

/**
 * Real role processes for the dispatcher and end-to-end workloads
 * (`bun src/cli.ts …`, or HARNESS_BIN), and their memory as the kernel counts it.
 */

export { freePort, type Role, spawnHarness };

export const INTERNAL_TOKEN = "bench-internal-token-0123456789";

/** Env for the roles on one bench database and file store; logs at warn so they cost little. */
export function roleEnv(p: {
  url: string;
  storeDir: string;
  port: number;
  leaseMs?: number;
}): Record<string, string> {
  return {
    DATABASE_URL: p.url,
    INTERNAL_AUTH_TOKEN: INTERNAL_TOKEN,
    OBJECT_STORE_URL: `file://${p.storeDir}`,
    PORT: String(p.port),
    DISPATCHER_URL: `http://127.0.0.1:${p.port}`,
    LEASE_DURATION_MS: String(p.leaseMs ?? 600_000),
    LOG_LEVEL: "warn",
  };
}

/** A process the bench started and stops. */
export interface Stoppable {
  name: string;
  proc: { exitCode: number | null; pid: number };
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** `bun <script>` with `env`, for a bench-owned server such as the bare baseline. */
export function spawnScript(name: string, script: string, env: Record<string, string>): Stoppable {
  const proc = Bun.spawn([process.execPath, script], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...ALLOCATOR_ENV, ...env },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  let err = "";
  const pumped = (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  return {
    name,
    proc,
    stderr: () => err,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const code = await proc.exited;
      await pumped;
      return code;
    },
  };
}

/** Waits until `GET <base>/<path>` answers 2xx. */
export async function waitHttp(base: string, path: string, role?: Stoppable): Promise<void> {
  await waitFor(
    async () => {
      if (role !== undefined && role.proc.exitCode !== null) {
        throw new Error(`${role.name} exited ${role.proc.exitCode}: ${role.stderr().slice(-500)}`);
      }
      return (await fetch(`${base}${path}`).catch(() => null))?.ok;
    },
    { what: `${base}${path}`, timeoutMs: 30_000, intervalMs: 50 },
  );
}

/** Peak resident set (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number): number {
  const status = readFileSync(join("/proc", String(pid), "status"), "utf8");
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (m === null) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}
