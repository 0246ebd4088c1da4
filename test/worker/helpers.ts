import { afterAll, beforeAll } from "bun:test";
import { readFile } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as v from "valibot";
import { AlertLine } from "../../src/contracts/alert";
import { BufferMessage } from "../../src/contracts/queue";
import type { Sql } from "../../src/db/connect";
import { WORKER_LOG } from "../../src/worker/logs";
import { startDispatcher, TEST_INTERNAL_TOKEN, type TestDispatcher } from "../support/dispatcher";
import { type Role, runHarness, spawnHarness } from "../support/processes";
import { tempDir } from "../support/temp";
import { waitFor } from "../support/wait";

/** Shared pieces of the worker's real-process tests. */

/** A file store root of its own, removed when the test run ends. */
export function tempStoreUrl(): string {
  return pathToFileURL(tempDir("harness-worker-objects-")).href;
}

/**
 * A real dispatcher for this test file on its fresh database and its own file
 * store, started before its tests and stopped after. Returns the env workers
 * and `task create` run with (DISPATCHER_URL included).
 */
export function useWorkerDispatcher(
  databaseUrl: () => string,
  o: { storeUrl: string; leaseMs: number; visibilityMs: number },
): () => Record<string, string> {
  let dispatcher: TestDispatcher | undefined;
  let env: Record<string, string> | undefined;
  beforeAll(async () => {
    const common = {
      DATABASE_URL: databaseUrl(),
      INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
      OBJECT_STORE_URL: o.storeUrl,
      LEASE_DURATION_MS: String(o.leaseMs),
      VISIBILITY_TIMEOUT_MS: String(o.visibilityMs),
    };
    dispatcher = await startDispatcher({ databaseUrl: databaseUrl(), env: common });
    env = { ...common, DISPATCHER_URL: dispatcher.url };
  }, 30_000);
  afterAll(async () => {
    await dispatcher?.stop();
  });
  return () => {
    if (env === undefined) throw new Error("the dispatcher is only there inside tests");
    return env;
  };
}

export async function createTasks(
  env: Record<string, string>,
  org: string,
  flags: string[],
): Promise<string[]> {
  const r = await runHarness(["task", "create", "--org", org, ...flags], env);
  if (r.code !== 0) throw new Error(`task create exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().split("\n");
}

export function startWorker(
  env: Record<string, string>,
  args: string[] = [],
  name = "worker",
): Role {
  return spawnHarness(name, ["worker", ...args], env);
}

export async function wakeupCount(sql: Sql, taskId: string): Promise<number> {
  const rows = await sql`
    SELECT count(*)::int AS n FROM state.queue_messages
    WHERE queue_name = 'task_wakeup' AND payload->>'task_id' = ${taskId}`;
  return Number(rows[0]?.n ?? 0);
}

/** Waits until the dispatcher's drainer has published a wakeup for each task. */
export async function waitForWakeups(sql: Sql, taskIds: string[]): Promise<void> {
  await waitFor(
    async () => {
      for (const id of taskIds) if ((await wakeupCount(sql, id)) === 0) return false;
      return true;
    },
    { what: `wakeups of ${taskIds.length} task(s)`, timeoutMs: 15_000 },
  );
}

/**
 * The task's buffer_queue messages once the dispatcher's drainer has sent
 * every outbox row of the task (a completed task's messages follow its commit).
 */
export async function bufferMessages(sql: Sql, taskId: string): Promise<BufferMessage[]> {
  await waitFor(
    async () => {
      const pending = await sql`
        SELECT count(*)::int AS n FROM state.outbox
        WHERE status = 'pending' AND (task_id = ${taskId} OR payload->>'task_id' = ${taskId})`;
      return Number(pending[0]?.n) === 0;
    },
    { what: `the outbox rows of task ${taskId} to be sent`, timeoutMs: 15_000 },
  );
  const rows = await sql`
    SELECT payload FROM state.queue_messages
    WHERE queue_name = 'buffer_queue' AND payload->>'task_id' = ${taskId} ORDER BY id`;
  return rows.map((r) => v.parse(BufferMessage, r.payload));
}

const TaskRow = v.object({ status: v.string(), attempt: v.number(), org_id: v.string() });

export async function taskRow(sql: Sql, taskId: string): Promise<v.InferOutput<typeof TaskRow>> {
  const rows = await sql`SELECT status, attempt, org_id FROM state.tasks WHERE id = ${taskId}`;
  return v.parse(TaskRow, rows[0]);
}

/** Reads a file-store batch and checks every line against the AlertLine contract. */
export async function readBatch(uri: string): Promise<{ lines: AlertLine[]; bytes: number }> {
  const raw = await readFile(fileURLToPath(uri));
  const text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  if (!text.endsWith("\n")) throw new Error(`batch ${uri} does not end with a newline`);
  const lines = text
    .slice(0, -1)
    .split("\n")
    .map((line) => v.parse(AlertLine, JSON.parse(line)));
  return { lines, bytes: raw.byteLength };
}

export function outcomes(role: Role, taskId?: string): unknown[] {
  return role.logs
    .filter((l) => l.msg === WORKER_LOG.task && (taskId === undefined || l.task_id === taskId))
    .map((l) => l.outcome);
}
