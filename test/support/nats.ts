import { afterAll, beforeAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type NatsCluster,
  type NatsServerOptions,
  type NatsServerProcess,
  startNatsCluster,
  startNatsServer,
} from "../../src/platform/nats-server";
import { NatsQueue } from "../../src/queue/nats/backend";

/**
 * NATS for tests: the shared server (TEST_NATS_URL, default 127.0.0.1:4222)
 * with a namespace of its own per test file, whose streams are deleted at the
 * end; or servers of the test's own, in a temp folder, killed at the end.
 */

export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";

export function uniqueNamespace(tag: string): string {
  return `t_${tag}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

/** The ack wait the test namespace's consumers are created with. */
export const ENSURED_VISIBILITY_MS = 30_000;

export interface TestNats {
  namespace: string;
  /** The backend the file shares (streams ensured). */
  queue: NatsQueue;
  /** Another backend on the same namespace: a second process, as far as the broker can tell. */
  open(name?: string): Promise<NatsQueue>;
}

/** A NatsQueue on its own namespace for this test file; streams dropped and connections closed after. */
export function useNatsQueue(tag: string, url = TEST_NATS_URL): () => TestNats {
  let t: TestNats | undefined;
  const opened: NatsQueue[] = [];
  beforeAll(async () => {
    const namespace = uniqueNamespace(tag);
    const open = async (name = "test") => {
      const q = await NatsQueue.open({ url, namespace, name });
      opened.push(q);
      return q;
    };
    const queue = await open();
    await queue.ensure({ visibilityTimeoutMs: ENSURED_VISIBILITY_MS, replicas: 1 });
    t = { namespace, queue, open };
  });
  afterAll(async () => {
    await t?.queue.drop();
    await Promise.all(opened.map((q) => q.close()));
  });
  return () => {
    if (t === undefined) throw new Error("useNatsQueue: used before beforeAll ran");
    return t;
  };
}

const owned = new Set<{ stop(): Promise<void> }>();
const dirs = new Set<string>();

export function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `harness-${tag}-`));
  dirs.add(dir);
  return dir;
}

/** A nats-server of the test's own, stopped (and its folder removed) after the file (useOwnNats). */
export async function ownNatsServer(
  o: Omit<NatsServerOptions, "dir"> & { dir?: string },
): Promise<NatsServerProcess> {
  const server = await startNatsServer({ ...o, dir: o.dir ?? tempDir(o.name) });
  owned.add(server);
  return server;
}

export async function ownNatsCluster(tag: string): Promise<NatsCluster> {
  const cluster = await startNatsCluster({ dir: tempDir(tag), name: tag });
  owned.add(cluster);
  return cluster;
}

/** Stops every nats-server the tests started and removes their folders. */
export async function stopOwnedNats(): Promise<void> {
  await Promise.all([...owned].map((s) => s.stop().catch(() => undefined)));
  owned.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/**
 * Call at the top of a test file that starts servers of its own
 * (ownNatsServer, ownNatsCluster, tempDir): they are stopped after the file.
 * (This module is loaded once per run, so a hook of its own would belong to
 * the first file that imports it only; test/support/preload.ts stops any
 * left at the end of the run.)
 */
export function useOwnNats(): void {
  afterAll(stopOwnedNats);
}
