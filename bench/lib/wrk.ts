import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * wrk, the HTTP load generator (Debian package `wrk`): whether it is here,
 * and one run of it with a Lua script whose `done` prints one JSON line
 * (requests, seconds, non-2xx, errors, latency percentiles in µs).
 */

const LUA_DIR = join(import.meta.dir, "..", "dispatcher");

/** "wrk 4.1.0", or undefined when wrk is not installed. */
export function wrkVersion(): string | undefined {
  const r = spawnSync("wrk", ["--version"], { encoding: "utf8" });
  if (r.error !== undefined) return undefined;
  const m = /wrk (?:debian\/)?(\d+\.\d+\.\d+)/.exec(`${r.stdout}${r.stderr}`);
  return m === null ? "wrk ?" : `wrk ${m[1]}`;
}

export const WRK_MISSING = "wrk is not installed (apt-get install -y wrk)";

export interface WrkResult {
  requests: number;
  seconds: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `wrk -t1 -c<connections> -d<seconds>s -s <script> <url>` and reads its JSON summary. */
export async function runWrk(p: {
  script: "heartbeat.lua" | "claim.lua";
  url: string;
  connections: number;
  seconds: number;
  env: Record<string, string>;
}): Promise<WrkResult> {
  const proc = Bun.spawn(
    [
      "wrk",
      "-t1",
      `-c${p.connections}`,
      `-d${p.seconds}s`,
      "--timeout",
      "5s",
      "-s",
      join(LUA_DIR, p.script),
      p.url,
    ],
    { env: { ...process.env, ...p.env }, stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const line = out.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (code !== 0 || line === undefined) throw new Error(`wrk exited ${code}: ${err}${out}`);
  const j = JSON.parse(line.slice("WRK_JSON ".length)) as Record<string, number>;
  const num = (k: string) => {
    const x = j[k];
    if (typeof x !== "number") throw new Error(`wrk summary lacks ${k}: ${line}`);
    return x;
  };
  return {
    requests: num("requests"),
    seconds: num("duration_us") / 1e6,
    non2xx: num("non2xx"),
    errors: num("errors"),
    p50Ms: num("p50_us") / 1000,
    p99Ms: num("p99_us") / 1000,
  };
}
