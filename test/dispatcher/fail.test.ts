import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { type ClaimResponse, FailResponse } from "../../src/contracts/http";
import { outboxDrainOnce } from "../../src/dispatcher/drain";
import { createLogger } from "../../src/log";
import { DispatcherClient } from "../../src/worker/client";
import { useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";
import { newTask } from "./_client";
import { expireLease, type InProcess, inProcess, retryDue, snapshot } from "./_inprocess";

/** POST /v1/task/fail: the reason on the attempt, a backoff wakeup or the end of the task. */

const db = useFreshDatabase();
const BACKOFF = { baseMs: 300, maxMs: 1_000 };
const MAX_ATTEMPTS = 3;
let api: InProcess;

beforeAll(async () => {
  api = await inProcess(db().sql, { maxAttempts: MAX_ATTEMPTS, retryBackoff: BACKOFF });
});

const fenceOf = (c: ClaimResponse) => ({
  task_id: c.task_id,
  attempt: c.attempt,
  lease_token: c.lease_token,
});
const fail = (c: ClaimResponse, reason: string, retryable: boolean, token = c.capability_token) =>
  api.post("/v1/task/fail", { ...fenceOf(c), reason, retryable }, token);

async function taskRow(id: string) {
  const [row] = await db().sql`
    SELECT status, attempt, lease_token, lease_expires_at, last_error, finished_at, updated_at, retry_at
    FROM state.tasks WHERE id = ${id}`;
  return row;
}

async function wakeups(id: string) {
  // created_at is the writing statement's now(), as is the base of available_at.
  return db().sql`
    SELECT attempt, available_at, extract(epoch FROM available_at - created_at) * 1000 AS delay_ms
    FROM state.outbox
    WHERE task_id = ${id} AND queue_name = 'task_wakeup' AND attempt IS NOT NULL ORDER BY id`;
}

const drain = () =>
  outboxDrainOnce(db().sql, {
    limit: 500,
    log: createLogger("drainer-test"),
    publisherFor: (tx) => db().queue().publisher(tx),
  });

describe("fail", () => {
  test("retryable → 200 queued: no lease, the reason recorded, a wakeup hidden for base · 2^(attempt−1)", async () => {
    const id = await newTask(db().sql);
    const first = await api.claim(id);
    const res = await fail(first, "exit code 3", true);
    expect(res.status).toBe(200);
    const body = await res.json();
    const task = await taskRow(id);
    expect(task).toMatchObject({
      status: "queued",
      attempt: 1,
      lease_token: null,
      lease_expires_at: null,
      last_error: "exit code 3",
      finished_at: null,
    });
    const [wake] = await wakeups(id);
    expect(Number(wake?.delay_ms)).toBe(BACKOFF.baseMs);
    expect(body).toEqual({
      task_id: id,
      attempt: 1,
      status: "queued",
      retry_at: wake?.available_at.toISOString(),
    });
    const { attempts } = await snapshot(db().sql, id);
    expect(attempts).toMatchObject([{ attempt: 1, outcome: "failed", reason: "exit code 3" }]);
    expect(attempts[0]?.ended_at).toEqual(task?.updated_at);

    // Due by the database clock at the wakeup's own instant.
    expect(task?.retry_at).toEqual(wake?.available_at);

    // The second attempt's failure waits twice as long; its first stays `failed`.
    await retryDue(db().sql, id);
    const second = await api.claim(id);
    expect(second.attempt).toBe(2);
    expect((await fail(second, "exit code 4", true)).status).toBe(200);
    expect((await wakeups(id)).map((w) => Number(w.delay_ms))).toEqual([300, 600]);
    expect((await snapshot(db().sql, id)).attempts).toMatchObject([
      { attempt: 1, outcome: "failed", reason: "exit code 3" },
      { attempt: 2, outcome: "failed", reason: "exit code 4" },
    ]);
  });

  test("the wakeup is published hidden until its retry_at, then becomes visible", async () => {
    await drain();
    await db().sql`DELETE FROM state.queue_messages`;
    const id = await newTask(db().sql);
    await drain();
    await db().sql`DELETE FROM state.queue_messages`;
    const c = await api.claim(id);
    expect((await fail(c, "flaky", true)).status).toBe(200);
    const [wake] = await wakeups(id);
    expect(await drain()).toEqual({ published: 1, rejected: 0 });
    const [msg] = await db().sql`
      SELECT available_at FROM state.queue_messages WHERE payload->>'task_id' = ${id}`;
    expect(msg?.available_at).toEqual(wake?.available_at);
    const wakeupDepth = async () =>
      (await db().queue().admin().depths()).find((q) => q.queue === "task_wakeup");
    expect(await wakeupDepth()).toMatchObject({ ready: 0, delayed: 1 });
    await waitFor(async () => (await wakeupDepth())?.ready === 1, {
      what: "the retry's wakeup to become visible",
      timeoutMs: 5_000,
    });
  });

  test("not retryable → 200 failed with last_error and no wakeup", async () => {
    const id = await newTask(db().sql);
    const c = await api.claim(id);
    const res = await fail(c, "bad input", false);
    expect(await res.json()).toEqual({ task_id: id, attempt: 1, status: "failed", retry_at: null });
    expect(await taskRow(id)).toMatchObject({ status: "failed", last_error: "bad input" });
    expect((await taskRow(id))?.finished_at).toBeInstanceOf(Date);
    expect(await wakeups(id)).toHaveLength(0);
    expect((await snapshot(db().sql, id)).attempts).toMatchObject([
      { attempt: 1, outcome: "failed", reason: "bad input" },
    ]);
  });

  test("retryable at MAX_ATTEMPTS → failed, no wakeup", async () => {
    const id = await newTask(db().sql);
    let c = await api.claim(id);
    for (let n = 1; n < MAX_ATTEMPTS; n++) {
      expect((await fail(c, `try ${n}`, true)).status).toBe(200);
      await retryDue(db().sql, id);
      c = await api.claim(id);
    }
    expect(c.attempt).toBe(MAX_ATTEMPTS);
    const res = await fail(c, "last try", true);
    expect(await res.json()).toMatchObject({ status: "failed", retry_at: null });
    expect(await taskRow(id)).toMatchObject({ status: "failed", last_error: "last try" });
    expect(await wakeups(id)).toHaveLength(MAX_ATTEMPTS - 1);
  });

  test("a token without task:fail → 403 missing_scope; bad bodies → 400; nothing changed", async () => {
    const c = await api.claim(await newTask(db().sql));
    const before = await snapshot(db().sql, c.task_id);
    const token = await api.token({
      orgId: c.org_id,
      taskId: c.task_id,
      attempt: c.attempt,
      scope: "task:heartbeat task:buffer-publish task:complete",
    });
    const scoped = await fail(c, "x", true, token);
    expect(scoped.status).toBe(403);
    expect(await scoped.json()).toMatchObject({ error: "missing_scope" });
    for (const body of [
      { ...fenceOf(c), reason: "", retryable: true },
      { ...fenceOf(c), reason: "x".repeat(4097), retryable: true },
      { ...fenceOf(c), reason: "x" },
      { ...fenceOf(c), reason: "x", retryable: "yes" },
      { ...fenceOf(c), reason: "x", retryable: true, extra: 1 },
    ]) {
      const res = await api.post("/v1/task/fail", body, c.capability_token);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
    expect(await snapshot(db().sql, c.task_id)).toEqual(before);
  });
});

describe("no claim before the retry is due", () => {
  // A backoff far longer than the test, so only the database clock decides when it is due.
  const LONG = { baseMs: 60_000, maxMs: 60_000 };
  let slow: InProcess;
  beforeAll(async () => {
    slow = await inProcess(db().sql, { maxAttempts: MAX_ATTEMPTS, retryBackoff: LONG });
  });

  test("a duplicate wakeup's claim → 409 retry_pending with Retry-After, changing nothing; due → claimed", async () => {
    const id = await newTask(db().sql);
    const first = await slow.claim(id);
    const failed = await slow.post(
      "/v1/task/fail",
      { ...fenceOf(first), reason: "flaky", retryable: true },
      first.capability_token,
    );
    const { retry_at } = v.parse(FailResponse, await failed.json());
    const before = await snapshot(db().sql, id);
    expect(before.task?.retry_at.toISOString()).toBe(retry_at);

    const early = await slow.post("/internal/task-claim", { task_id: id });
    expect(early.status).toBe(409);
    expect(await early.json()).toEqual({
      error: "retry_pending",
      message: `the task's retry is due at ${retry_at}`,
    });
    const after = Number(early.headers.get("retry-after"));
    expect(after).toBeGreaterThan(50);
    expect(after).toBeLessThanOrEqual(60);
    expect(await snapshot(db().sql, id)).toEqual(before);

    await retryDue(db().sql, id);
    const second = await slow.claim(id);
    expect(second.attempt).toBe(2);
    expect(await taskRow(id)).toMatchObject({ status: "running", attempt: 2, retry_at: null });
  });

  test("a task queued by task create, or failed for good, has no retry time", async () => {
    const id = await newTask(db().sql);
    expect(await taskRow(id)).toMatchObject({ status: "queued", retry_at: null });
    const c = await slow.claim(id);
    await slow.post(
      "/v1/task/fail",
      { ...fenceOf(c), reason: "bad input", retryable: false },
      c.capability_token,
    );
    expect(await taskRow(id)).toMatchObject({ status: "failed", retry_at: null });
    const again = await slow.post("/internal/task-claim", { task_id: id });
    expect(await again.json()).toMatchObject({ error: "task_finished" });
  });
});

describe("how attempts end", () => {
  test("a claim over an expired lease ends the old attempt fenced; past MAX_ATTEMPTS the last ends expired", async () => {
    const id = await newTask(db().sql);
    for (let n = 1; n <= MAX_ATTEMPTS; n++) {
      await api.claim(id);
      await expireLease(db().sql, id);
    }
    const res = await api.post("/internal/task-claim", { task_id: id });
    expect(res.status).toBe(409);
    const { attempts } = await snapshot(db().sql, id);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, "fenced"],
      [2, "fenced"],
      [3, "expired"],
    ]);
    expect(attempts[0]?.reason).toBe("lease expired; attempt 2 claimed");
    expect(String(attempts[2]?.reason)).toContain("MAX_ATTEMPTS");
  });

  test("a stored payload that breaks its contract fails the claimed attempt through the fenced fail", async () => {
    const [row] = await db().sql`
      INSERT INTO state.tasks (org_id, payload) VALUES ('acme', ${db().sql.json(["not", "an", "object"])})
      RETURNING id::text AS id`;
    const id = String(row?.id);
    const res = await api.post("/internal/task-claim", { task_id: id });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "task_finished" });
    expect(await taskRow(id)).toMatchObject({ status: "failed", attempt: 1 });
    const { attempts, outbox } = await snapshot(db().sql, id);
    expect(attempts).toMatchObject([{ attempt: 1, outcome: "failed" }]);
    expect(String(attempts[0]?.reason)).toContain("payload breaks the task payload contract");
    expect(outbox).toHaveLength(0);
  });
});

describe("the worker's client", () => {
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => api.app(req) });
  afterAll(() => server.stop(true));

  test("DispatcherClient.fail reaches the endpoint and parses its answer", async () => {
    const client = new DispatcherClient({
      baseUrl: `http://127.0.0.1:${server.port}`,
      internalToken: "unused-internal-token-0123",
      log: createLogger("client-test"),
    });
    const c = await api.claim(await newTask(db().sql));
    const lease = { ...fenceOf(c), capability_token: c.capability_token };
    const signal = new AbortController().signal;
    const reply = await client.fail(lease, { reason: "child exited 1", retryable: true }, signal);
    expect(reply).toMatchObject({ ok: true, status: 200, body: { status: "queued" } });
    const again = await client.fail(lease, { reason: "again", retryable: true }, signal);
    expect(again).toMatchObject({ ok: false, status: 409, error: "stale_lease" });
  });
});
