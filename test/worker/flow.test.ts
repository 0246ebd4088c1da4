import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { NDJSON } from "../../src/contracts/common";
import { dedupeKey } from "../../src/worker/alerts";
import { WORKER_LOG } from "../../src/worker/logs";
import { useFreshDatabase } from "../support/db";
import { TEST_INTERNAL_TOKEN } from "../support/dispatcher";
import { publishPayloads } from "../support/queue";
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
  wakeupCount,
} from "./helpers";

/** A real dispatcher and real `harness worker` processes on one fresh database. */

const db = useFreshDatabase();
const storeUrl = tempStoreUrl();
const env = useWorkerDispatcher(() => db().url, { storeUrl, leaseMs: 2000, visibilityMs: 2000 });

describe("worker: claim → write → publish → complete", () => {
  let taskId = "";

  test("a task of 50 alerts gives one buffer message whose batch holds 50 valid lines", async () => {
    [taskId = ""] = await createTasks(env(), "acme", ["--alerts", "50"]);
    await waitForWakeups(db().sql, [taskId]);
    const worker = startWorker(env(), ["--until-idle"]);
    expect(await worker.exited).toBe(0);
    expect(outcomes(worker)).toEqual(["succeeded"]);
    expect(worker.stdout()).toContain("worker: 1 tasks succeeded, 50 alerts");
    expect(worker.logs.some((l) => l.msg === WORKER_LOG.stopped)).toBe(true);

    expect(await taskRow(db().sql, taskId)).toEqual({
      status: "succeeded",
      attempt: 1,
      org_id: "acme",
    });
    const messages = await bufferMessages(db().sql, taskId);
    expect(messages).toHaveLength(1);
    const [m] = messages;
    if (m === undefined) throw new Error("no buffer message");
    expect(m).toMatchObject({ task_id: taskId, org_id: "acme", attempt: 1, content_type: NDJSON });
    expect(m.batch_uri).toMatch(
      new RegExp(`^${storeUrl}/acme/${taskId}/1-[0-9a-f-]{36}\\.jsonl$`.replaceAll("/", "\\/")),
    );
    const batch = await readBatch(m.batch_uri);
    expect(m.batch_size_bytes).toBe(batch.bytes);
    expect(batch.lines).toHaveLength(50);
    expect(batch.lines.map((l) => l.dedupe_key)).toEqual(
      Array.from({ length: 50 }, (_, i) => dedupeKey(taskId, i)),
    );
    expect(new Set(batch.lines.map((l) => l.org_id))).toEqual(new Set(["acme"]));
    expect(await wakeupCount(db().sql, taskId)).toBe(0);
  }, 30_000);

  test("the same wakeup three times more: acked, still one attempt and one batch", async () => {
    await publishPayloads(
      db().queue(),
      "task_wakeup",
      [taskId, taskId, taskId].map((task_id) => ({ task_id })),
    );
    const worker = startWorker(env(), ["--until-idle", "--concurrency", "4"]);
    expect(await worker.exited).toBe(0);
    expect(outcomes(worker, taskId)).toEqual(["finished", "finished", "finished"]);
    expect(await wakeupCount(db().sql, taskId)).toBe(0);
    expect(await taskRow(db().sql, taskId)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await bufferMessages(db().sql, taskId)).toHaveLength(1);
  }, 30_000);

  test("a task of zero alerts completes without a batch", async () => {
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "0"]);
    await waitForWakeups(db().sql, [id]);
    const worker = startWorker(env(), ["--until-idle"]);
    expect(await worker.exited).toBe(0);
    expect(outcomes(worker, id)).toEqual(["succeeded"]);
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(await bufferMessages(db().sql, id)).toHaveLength(0);
  }, 30_000);

  test("a wakeup for an unknown task is acked with a warning", async () => {
    const ghost = randomUUID();
    await publishPayloads(db().queue(), "task_wakeup", [{ task_id: ghost }]);
    const worker = startWorker(env(), ["--until-idle"]);
    expect(await worker.exited).toBe(0);
    expect(outcomes(worker, ghost)).toEqual(["not_found"]);
    expect(worker.logs.some((l) => l.level === "warn" && l.task_id === ghost)).toBe(true);
    expect(await wakeupCount(db().sql, ghost)).toBe(0);
  }, 30_000);

  test("a wakeup for a task whose lease another holds is hidden until the lease could expire", async () => {
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "3"]);
    await waitForWakeups(db().sql, [id]);
    // Someone else holds the lease: claim it through the real API.
    const claim = await fetch(`${env().DISPATCHER_URL}/internal/task-claim`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TEST_INTERNAL_TOKEN}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ task_id: id }),
    });
    expect(claim.status).toBe(200);
    const worker = startWorker(env(), ["--until-idle", "--idle-ms", "300"]);
    await worker.waitForLog((l) => l.msg === WORKER_LOG.task && l.task_id === id, "the claim");
    expect(outcomes(worker, id)).toEqual(["lease_active"]);
    const rows = await db().sql`
      SELECT extract(epoch FROM available_at - now()) * 1000 AS hidden_ms FROM state.queue_messages
      WHERE queue_name = 'task_wakeup' AND payload->>'task_id' = ${id}`;
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]?.hidden_ms)).toBeGreaterThan(500);
    // --until-idle waits for the running task; once that lease lapses it takes attempt 2 and finishes.
    expect(await worker.exited).toBe(0);
    // The hidden wakeup and the reaper's both come back: one succeeds, the other finds it done.
    const seen = outcomes(worker, id);
    expect(seen[0]).toBe("lease_active");
    expect(seen.filter((o) => o === "succeeded")).toHaveLength(1);
    expect(
      seen.filter((o) => !["lease_active", "succeeded", "finished"].includes(String(o))),
    ).toEqual([]);
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await bufferMessages(db().sql, id)).toHaveLength(1);
  }, 30_000);
});

describe("worker: stopping", () => {
  test("SIGTERM lets an in-flight task finish within the grace period, exit 0", async () => {
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "5", "--work-ms", "1500"]);
    const worker = startWorker(env());
    await worker.waitForLog((l) => l.msg === WORKER_LOG.claimed && l.task_id === id, "claim");
    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(outcomes(worker, id)).toEqual(["succeeded"]);
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });
    expect(worker.stdout()).toContain("worker: 1 tasks succeeded");
  }, 30_000);

  test("past the grace period an in-flight task is abandoned; its wakeup comes back", async () => {
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "5", "--work-ms", "3000"]);
    const worker = startWorker(env(), ["--grace-ms", "200"]);
    await worker.waitForLog((l) => l.msg === WORKER_LOG.claimed && l.task_id === id, "claim");
    const stopping = Date.now();
    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(2_000);
    expect(outcomes(worker, id)).toEqual(["abandoned"]);
    expect(await wakeupCount(db().sql, id)).toBeGreaterThan(0);
    expect(await bufferMessages(db().sql, id)).toHaveLength(0);
    const next = startWorker(env(), ["--until-idle", "--idle-ms", "4000"]);
    expect(await next.exited).toBe(0);
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 2 });
    expect(await bufferMessages(db().sql, id)).toHaveLength(1);
  }, 30_000);
});
