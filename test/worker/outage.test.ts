import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { WORKER_LOG } from "../../src/worker/logs";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_INTERNAL_TOKEN, type TestDispatcher } from "../support/dispatcher";
import { freePort } from "../support/embedded";
import type { Role } from "../support/processes";
import {
  bufferMessages,
  createTasks,
  outcomes,
  startWorker,
  taskRow,
  tempStoreUrl,
  waitForWakeups,
} from "./helpers";

/** The worker against a dispatcher that goes away and comes back on the same port. */

const db = useFreshDatabase();
let port = 0;
let dispatcher: TestDispatcher | undefined;
let common: Record<string, string> = {};
let env: Record<string, string> = {};
const workers: Role[] = [];

async function dispatcherUp(): Promise<void> {
  dispatcher = await startDispatcher({ databaseUrl: db().url, env: common, port });
}

async function dispatcherDown(): Promise<void> {
  expect(await dispatcher?.stop()).toBe(0);
  dispatcher = undefined;
}

/** The task finished on its first attempt, with one batch published, and the worker stops cleanly. */
async function expectSucceededOnce(worker: Role, id: string): Promise<void> {
  await worker.waitForLog((l) => l.msg === WORKER_LOG.task && l.task_id === id, "the task", 20_000);
  expect(outcomes(worker, id)).toEqual(["succeeded"]);
  expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });
  expect(await bufferMessages(db().sql, id)).toHaveLength(1);
  expect(await worker.stop("SIGTERM")).toBe(0);
}

beforeAll(async () => {
  port = await freePort();
  common = {
    DATABASE_URL: db().url,
    INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
    OBJECT_STORE_URL: tempStoreUrl(),
    LEASE_DURATION_MS: "6000",
    VISIBILITY_TIMEOUT_MS: "3000",
  };
  env = { ...common, DISPATCHER_URL: `http://127.0.0.1:${port}` };
  await dispatcherUp();
}, 30_000);

// A failed test must not leave its worker to take the next test's task.
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop("SIGKILL")));
});

afterAll(async () => {
  await dispatcher?.stop();
});

test("a worker facing a stopped dispatcher retries and succeeds once it is back", async () => {
  const [id = ""] = await createTasks(env, "acme", ["--alerts", "10"]);
  await waitForWakeups(db().sql, [id]);
  await dispatcherDown();
  const worker = startWorker(env);
  workers.push(worker);
  await worker.waitForLog(
    (l) => l.msg === WORKER_LOG.dispatcherUnavailable && l.path === "/internal/task-claim",
    "a failed claim",
  );
  await dispatcherUp();
  await expectSucceededOnce(worker, id);
}, 60_000);

test("a dispatcher outage in the middle of a task: heartbeats retry, the attempt completes", async () => {
  const [id = ""] = await createTasks(env, "acme", ["--alerts", "10", "--work-ms", "2500"]);
  const worker = startWorker(env);
  workers.push(worker);
  await worker.waitForLog((l) => l.msg === WORKER_LOG.claimed && l.task_id === id, "the claim");
  await dispatcherDown();
  await worker.waitForLog(
    (l) => l.msg === WORKER_LOG.dispatcherUnavailable && l.task_id === id,
    "a failed heartbeat or publish",
    10_000,
  );
  await dispatcherUp();
  await expectSucceededOnce(worker, id);
}, 60_000);
