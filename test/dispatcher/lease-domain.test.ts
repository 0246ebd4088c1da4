import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { BatchRef } from "../../src/dispatcher/batch";
import {
  claimTask,
  completeTask,
  DEFAULT_RETRY_BACKOFF,
  type Fence,
  failTask,
  publishBuffer,
  renewLease,
  retryBackoffMs,
} from "../../src/dispatcher/lease";
import { classifyFence, taskFenceRead } from "../../src/dispatcher/sql/fence";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { expireLease, STORE, snapshot } from "./_inprocess";

/** src/dispatcher/lease.ts and the fence, called directly on a real database. */

const db = useFreshDatabase();
const RULES = { leaseMs: 30_000, maxAttempts: 3 };
const BATCH = { objectStoreUrl: STORE, maxBatchBytes: 1_000, maxBatchesPerAttempt: 2 };

async function claimed(org = "acme"): Promise<Fence> {
  const taskId = await newTask(db().sql, org);
  const r = await claimTask(db().sql, { taskId, ...RULES });
  if (r.kind !== "claimed") throw new Error(`claim: ${r.kind}`);
  return { taskId, attempt: r.attempt, leaseToken: r.leaseToken, orgId: r.orgId };
}

const batch = (f: Fence, name = "a.jsonl") => ({
  ...f,
  batchUri: `${STORE}/${f.orgId}/${f.taskId}/${name}`,
  contentType: "application/x-ndjson",
  batchSizeBytes: 10,
  rules: BATCH,
});

/** The queues of a task's outbox rows in id order, but the wakeup its creation wrote. */
const written = (outbox: ReadonlyArray<Record<string, unknown>>) =>
  outbox.map((o) => String(o.queue_name)).filter((q) => q !== "task_wakeup");

/** The batch reference a complete carries. */
function refOf(f: Fence, name: string): BatchRef {
  const { batchUri, contentType, batchSizeBytes } = batch(f, name);
  return { batchUri, contentType, batchSizeBytes };
}

/** completeTask under this file's batch rules, with or without a batch. */
const complete = (f: Fence & { batch?: BatchRef }) =>
  completeTask(db().sql, { ...f, rules: BATCH });

describe("classifyFence", () => {
  test("no task → stale; another org first; then a completed repeat; else stale", () => {
    expect(classifyFence(null)).toBe("stale");
    const row = { same_org: true, completed: false, holds: false, batch_known: true };
    expect(classifyFence(row)).toBe("stale");
    expect(classifyFence({ ...row, completed: true })).toBe("completed");
    expect(classifyFence({ ...row, completed: true, batch_known: false })).toBe("unpublished");
    expect(classifyFence({ ...row, same_org: false, completed: true })).toBe("wrong_org");
  });
});

describe("taskFenceRead: the fence fragment, read", () => {
  test("holds for the current attempt only, by org, token, status and the database clock", async () => {
    const f = await claimed();
    expect(await taskFenceRead(db().sql, f)).toEqual({
      same_org: true,
      completed: false,
      holds: true,
      batch_known: true,
    });
    expect(await taskFenceRead(db().sql, { ...f, orgId: "globex" })).toMatchObject({
      same_org: false,
      holds: false,
    });
    expect(await taskFenceRead(db().sql, { ...f, leaseToken: randomUUID() })).toMatchObject({
      holds: false,
    });
    expect(await taskFenceRead(db().sql, { ...f, attempt: 2 })).toMatchObject({ holds: false });
    // an upper-case token is the same UUID: the database compares, not JavaScript
    const upper = { ...f, leaseToken: f.leaseToken.toUpperCase() };
    expect(await taskFenceRead(db().sql, upper)).toMatchObject({ holds: true });
    await expireLease(db().sql, f.taskId);
    expect(await taskFenceRead(db().sql, f)).toMatchObject({ holds: false });
    expect(await taskFenceRead(db().sql, { ...f, taskId: randomUUID() })).toBeNull();
  });
});

describe("lease.ts", () => {
  test("renewLease: renewed for the holder; stale or wrong_org otherwise", async () => {
    const f = await claimed();
    const r = await renewLease(db().sql, { ...f, leaseMs: 60_000 });
    expect(r.kind).toBe("renewed");
    expect(await renewLease(db().sql, { ...f, orgId: "globex", leaseMs: 1 })).toEqual({
      kind: "wrong_org",
    });
    await expireLease(db().sql, f.taskId);
    expect(await renewLease(db().sql, { ...f, leaseMs: 1 })).toEqual({ kind: "stale" });
  });

  test("publishBuffer: accepted, a repeat, the cap, an invalid batch, stale", async () => {
    const f = await claimed();
    expect(await publishBuffer(db().sql, batch(f))).toEqual({ kind: "accepted", repeat: false });
    expect(await publishBuffer(db().sql, batch(f))).toEqual({ kind: "accepted", repeat: true });
    expect(await publishBuffer(db().sql, batch(f, "b.jsonl"))).toMatchObject({ repeat: false });
    expect(await publishBuffer(db().sql, batch(f, "c.jsonl"))).toEqual({
      kind: "too_many_batches",
      max: 2,
    });
    expect(await publishBuffer(db().sql, batch(f, "../x"))).toMatchObject({ kind: "invalid" });
    expect(await publishBuffer(db().sql, { ...batch(f), leaseToken: randomUUID() })).toEqual({
      kind: "stale",
    });
    expect(await publishBuffer(db().sql, { ...batch(f), orgId: "globex" })).toEqual({
      kind: "wrong_org",
    });
  });

  test("completeTask: completed once, then a repeat; another token is stale", async () => {
    const f = await claimed();
    expect(await complete({ ...f, leaseToken: randomUUID() })).toEqual({
      kind: "stale",
    });
    expect(await complete(f)).toEqual({ kind: "completed", repeated: false });
    expect(await complete(f)).toEqual({ kind: "completed", repeated: true });
    expect(await complete({ ...f, orgId: "globex" })).toEqual({ kind: "wrong_org" });
  });

  test("completeTask with a batch: published and completed in one statement, the batch's row first", async () => {
    const f = await claimed();
    const ref = (name: string) => refOf(f, name);
    expect(await complete({ ...f, batch: ref("a.jsonl") })).toEqual({
      kind: "completed",
      repeated: false,
    });
    const { task, outbox } = await snapshot(db().sql, f.taskId);
    expect(task?.status).toBe("succeeded");
    // One buffer row, then the task_completed row: ids in that order, as two calls would write them.
    expect(written(outbox)).toEqual(["buffer_queue", "task_completed"]);
    expect(outbox.find((o) => o.queue_name === "buffer_queue")?.payload).toMatchObject({
      batch_uri: ref("a.jsonl").batchUri,
      org_id: "acme",
    });
    const before = await snapshot(db().sql, f.taskId);
    // The same complete again: a repeat, nothing written.
    expect(await complete({ ...f, batch: ref("a.jsonl") })).toEqual({
      kind: "completed",
      repeated: true,
    });
    // A batch this attempt never published, or an invalid one, after it completed: refused.
    expect(await complete({ ...f, batch: ref("b.jsonl") })).toEqual({ kind: "unpublished" });
    expect(await complete({ ...f, batch: ref("../x") })).toEqual({ kind: "unpublished" });
    expect(await snapshot(db().sql, f.taskId)).toEqual(before);
  });

  test("completeTask with a batch: invalid → 422 kinds, past the cap, stale, other org; nothing changed", async () => {
    const f = await claimed();
    const ref = (name: string) => refOf(f, name);
    const before = await snapshot(db().sql, f.taskId);
    expect(await complete({ ...f, batch: ref("../x") })).toMatchObject({ kind: "invalid" });
    const elsewhere = { ...ref("a.jsonl"), batchUri: `${STORE}/acme/${randomUUID()}/a.jsonl` };
    expect(await complete({ ...f, batch: elsewhere })).toMatchObject({ kind: "invalid" });
    expect(await complete({ ...f, leaseToken: randomUUID(), batch: ref("a.jsonl") })).toEqual({
      kind: "stale",
    });
    expect(await complete({ ...f, orgId: "globex", batch: ref("a.jsonl") })).toEqual({
      kind: "wrong_org",
    });
    expect(await snapshot(db().sql, f.taskId)).toEqual(before);
    // Two batches published (the cap is 2): a third is refused, one already published is not.
    for (const name of ["1.jsonl", "2.jsonl"]) await publishBuffer(db().sql, batch(f, name));
    const full = await snapshot(db().sql, f.taskId);
    expect(await complete({ ...f, batch: ref("3.jsonl") })).toEqual({
      kind: "too_many_batches",
      max: 2,
    });
    expect(await snapshot(db().sql, f.taskId)).toEqual(full);
    expect(await complete({ ...f, batch: ref("2.jsonl") })).toEqual({
      kind: "completed",
      repeated: false,
    });
    const { outbox } = await snapshot(db().sql, f.taskId);
    expect(written(outbox)).toEqual(["buffer_queue", "buffer_queue", "task_completed"]);
  });

  test("two completes of one attempt at once: one completes, the other is its repeat", async () => {
    for (let round = 0; round < 5; round++) {
      const f = await claimed();
      const both = await Promise.all([complete(f), complete(f)]);
      expect(both.map((r) => (r.kind === "completed" ? r.repeated : r.kind)).sort()).toEqual([
        false,
        true,
      ]);
      const { outbox } = await snapshot(db().sql, f.taskId);
      expect(outbox.filter((o) => o.queue_name === "task_completed")).toHaveLength(1);
    }
  });

  test("failTask: requeued with its retry time, or failed; stale after either", async () => {
    const f = await claimed();
    const r = await failTask(db().sql, { ...f, reason: "r", retryable: true, rules: RULES });
    expect(r.kind).toBe("requeued");
    expect(await failTask(db().sql, { ...f, reason: "r", retryable: true, rules: RULES })).toEqual({
      kind: "stale",
    });
    const g = await claimed();
    expect(await failTask(db().sql, { ...g, reason: "r", retryable: false, rules: RULES })).toEqual(
      { kind: "failed" },
    );
    expect(await complete(g)).toEqual({ kind: "stale" });
  });

  test("retryBackoffMs: exponential in the attempt, capped", () => {
    const b = { baseMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 99].map((a) => retryBackoffMs(a, b))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
    expect(retryBackoffMs(1)).toBe(DEFAULT_RETRY_BACKOFF.baseMs);
    expect(retryBackoffMs(1_000_000)).toBe(DEFAULT_RETRY_BACKOFF.maxMs);
  });
});
