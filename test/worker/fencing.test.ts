import { afterAll, expect, test } from "bun:test";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dedupeKey } from "../../src/worker/alerts";
import { WORKER_LOG } from "../../src/worker/logs";
import { useFreshDatabase } from "../support/db";
import type { Role } from "../support/processes";
import { waitFor } from "../support/wait";
import {
  bufferMessages,
  createTasks,
  outcomes,
  readBatch,
  startWorker,
  taskRow,
  tempStoreUrl,
  useWorkerDispatcher,
  waitForWakeups,
} from "./helpers";

/**
 * A stale worker (invariant 2): paused past its lease while another takes
 * the next attempt, then resumed. Its heartbeat is refused and it publishes nothing.
 */

const db = useFreshDatabase();
const storeUrl = tempStoreUrl();
const env = useWorkerDispatcher(() => db().url, { storeUrl, leaseMs: 1500, visibilityMs: 1500 });
const workers: Role[] = [];

afterAll(async () => {
  for (const w of workers) w.proc.kill("SIGCONT");
  await Promise.all(workers.map((w) => w.stop("SIGKILL")));
});

async function leaseExpired(taskId: string): Promise<boolean> {
  const rows = await db().sql`
    SELECT lease_expires_at < now() AS expired FROM state.tasks WHERE id = ${taskId}`;
  return rows[0]?.expired === true;
}

test("a worker paused past its lease is fenced out: heartbeat 409, nothing published", async () => {
  const [id = ""] = await createTasks(env(), "acme", ["--alerts", "20", "--work-ms", "3000"]);
  await waitForWakeups(db().sql, [id]);
  const a = startWorker(env(), [], "worker-a");
  workers.push(a);
  await a.waitForLog(
    (l) => l.msg === WORKER_LOG.claimed && l.task_id === id && l.attempt === 1,
    "claim 1",
  );
  a.proc.kill("SIGSTOP");

  await waitFor(() => leaseExpired(id), { what: "attempt 1's lease to expire", timeoutMs: 10_000 });
  const b = startWorker(env(), [], "worker-b");
  workers.push(b);
  await b.waitForLog(
    (l) => l.msg === WORKER_LOG.claimed && l.task_id === id && l.attempt === 2,
    "claim 2",
  );

  a.proc.kill("SIGCONT");
  const refused = await a.waitForLog(
    (l) => l.msg === WORKER_LOG.heartbeatRefused,
    "refused heartbeat",
  );
  expect(refused).toMatchObject({ status: 409, code: "stale_lease", task_id: id, attempt: 1 });
  await a.waitForLog((l) => l.msg === WORKER_LOG.task && l.task_id === id, "attempt 1 ends");
  // Later duplicate wakeups (the reaper's) may reach A too; they find attempt 2's lease.
  expect(outcomes(a, id)[0]).toBe("stale");
  expect(outcomes(a, id).slice(1)).not.toContain("succeeded");

  await b.waitForLog(
    (l) => l.msg === WORKER_LOG.task && l.task_id === id,
    "attempt 2 ends",
    15_000,
  );
  expect(outcomes(b, id)).toEqual(["succeeded"]);
  expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 2 });

  // Only attempt 2's batch exists, in the store and in the buffer queue.
  const files = await readdir(join(fileURLToPath(storeUrl), "acme", id));
  expect(files.map((f) => f.split("-")[0])).toEqual(["2"]);
  const messages = await bufferMessages(db().sql, id);
  expect(messages.map((m) => m.attempt)).toEqual([2]);
  const batch = await readBatch(messages[0]?.batch_uri ?? "");
  expect(batch.lines.map((l) => l.dedupe_key)).toEqual(
    Array.from({ length: 20 }, (_, i) => dedupeKey(id, i)),
  );

  expect(await a.stop("SIGTERM")).toBe(0);
  expect(await b.stop("SIGTERM")).toBe(0);
}, 60_000);

/** A task of 15 alerts, and a worker that took it and was killed -9 at `failpoint`. */
async function taskWithWorkerKilledAt(failpoint: string, name: string) {
  const [id = ""] = await createTasks(env(), "acme", ["--alerts", "15"]);
  await waitForWakeups(db().sql, [id]);
  const dying = startWorker({ ...env(), HARNESS_FAILPOINTS: failpoint }, [], name);
  workers.push(dying);
  await dying.exited;
  expect(dying.proc.signalCode).toBe("SIGKILL");
  return { id, dying };
}

test("a worker killed after writing its batch, before complete: the next attempt publishes the same dedupe keys", async () => {
  const { id, dying } = await taskWithWorkerKilledAt("worker.after_write", "worker-dying");
  expect(outcomes(dying, id)).toEqual([]);

  const next = startWorker(env(), ["--until-idle", "--idle-ms", "3000"], "worker-next");
  workers.push(next);
  expect(await next.exited).toBe(0);
  expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 2 });
  // Attempt 1's batch was written, never handed over; attempt 2's was, with its complete.
  const messages = await bufferMessages(db().sql, id);
  expect(messages.map((m) => m.attempt)).toEqual([2]);
  const dir = join(fileURLToPath(storeUrl), "acme", id);
  const orphan = (await readdir(dir)).filter((f) => f.startsWith("1-"));
  expect(orphan).toHaveLength(1);
  const keys = await Promise.all(
    [`${storeUrl}/acme/${id}/${orphan[0]}`, messages[0]?.batch_uri ?? ""].map(async (uri) =>
      (await readBatch(uri)).lines.map((l) => l.dedupe_key),
    ),
  );
  expect(keys[0]).toEqual(Array.from({ length: 15 }, (_, i) => dedupeKey(id, i)));
  expect(keys[1]).toEqual(keys[0]);
}, 60_000);

test("a worker killed after its complete (carrying the batch) answered: nothing is done again", async () => {
  const { id } = await taskWithWorkerKilledAt("worker.after_complete", "worker-dying-done");
  expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });

  // The unacked wakeup comes back; the next worker finds the task finished and claims nothing.
  const next = startWorker(env(), [], "worker-next-done");
  workers.push(next);
  await next.waitForLog(
    (l) => l.msg === WORKER_LOG.task && l.task_id === id,
    "the redelivered wakeup",
    15_000,
  );
  expect(outcomes(next, id)).toEqual(["finished"]);
  expect(await next.stop("SIGTERM")).toBe(0);
  expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });
  const messages = await bufferMessages(db().sql, id);
  expect(messages.map((m) => m.attempt)).toEqual([1]);
  const keys = (await readBatch(messages[0]?.batch_uri ?? "")).lines.map((l) => l.dedupe_key);
  expect(keys).toEqual(Array.from({ length: 15 }, (_, i) => dedupeKey(id, i)));
}, 60_000);
