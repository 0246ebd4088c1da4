import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { freePort } from "./embedded";
import { waitFor } from "./wait";

/**
 * An S3 endpoint for tests: `s3rver` (npm) as a child process on a free
 * loopback port, with a temp data folder and one bucket. It speaks the S3 REST
 * protocol but does not verify SigV4 signatures (FACTS.md); on Node 20 its
 * listing needs `--openssl-legacy-provider`. Runs under `node` when there is
 * one, otherwise under Bun.
 */

const ROOT = resolve(import.meta.dir, "..", "..");
const BIN = join(ROOT, "node_modules", "s3rver", "bin", "s3rver.js");

export interface S3rver {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The S3_* variables (and OBJECT_STORE_URL for `prefix`) a role process needs. */
  env(prefix?: string): Record<string, string>;
  /** `s3://bucket[/prefix]` */
  url(prefix?: string): string;
  stop(): Promise<void>;
}

const live = new Set<Subprocess>();

/** Every s3rver still running, stopped (the test run's end: ./preload.ts). */
export async function stopAllS3rvers(): Promise<void> {
  const running = [...live];
  for (const proc of running) proc.kill("SIGKILL");
  await Promise.allSettled(running.map((p) => p.exited));
  live.clear();
}

async function accepts(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export async function startS3rver(bucket = "harness-test"): Promise<S3rver> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "harness-s3rver-"));
  const runtime = Bun.which("node") ?? process.execPath;
  const proc = Bun.spawn(
    [
      runtime,
      BIN,
      "-d",
      dir,
      "-a",
      "127.0.0.1",
      "-p",
      String(port),
      "--silent",
      "--configure-bucket",
      bucket,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    },
  );
  live.add(proc);
  const stop = async () => {
    if (live.has(proc)) {
      proc.kill("SIGKILL");
      await proc.exited;
      live.delete(proc);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) {
          throw new Error(`s3rver exited with ${proc.exitCode}: ${await proc.stderr.text()}`);
        }
        return accepts(port);
      },
      { what: `s3rver on port ${port}`, timeoutMs: 15_000, intervalMs: 50 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const keys = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1" };
  const url = (prefix?: string) => (prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`);
  return {
    endpoint,
    bucket,
    ...keys,
    url,
    env: (prefix?: string) => ({
      OBJECT_STORE_URL: url(prefix),
      S3_ENDPOINT: endpoint,
      S3_ACCESS_KEY_ID: keys.accessKeyId,
      S3_SECRET_ACCESS_KEY: keys.secretAccessKey,
      S3_REGION: keys.region,
    }),
    stop,
  };
}
