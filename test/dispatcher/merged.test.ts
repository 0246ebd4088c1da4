import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { claimBatcher } from "../../src/dispatcher/claims";
import { completeBatcher } from "../../src/dispatcher/completes";
import { publishBatcher } from "../../src/dispatcher/publishes";
import { renewBatcher } from "../../src/dispatcher/renewals";
import { taskClaimMany } from "../../src/dispatcher/sql/claim";
import { taskCompleteMany } from "../../src/dispatcher/sql/complete";
import type { Fence } from "../../src/dispatcher/sql/fence";
import { leaseRenewMany, taskPublishBatchMany } from "../../src/dispatcher/sql/tasks";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { expireLease } from "./_inprocess";

/**
 * Claims, heartbeats, buffer-publishes and completes merged into one statement (src/dispatcher/merge.ts,
 * `taskClaimMany`, `leaseRenewMany`, `taskPublishBatchMany`, `taskCompleteMany`): each call's outcome is the one it
 * would get alone, each fenced against its own row; a task is never claimed
 * or completed twice, however the calls on it are merged.
 */

const db = useFreshDatabase();
const RULES = { leaseMs: 30_000, maxAttempts: 2 };

async function attemptsOf(
  taskId: string,
): Promise<Array<{ attempt: number; outcome: string | null }>> {
  const rows = await db().sql`
    SELECT attempt, outcome FROM state.task_attempts WHERE task_id = ${taskId} ORDER BY attempt`;
  return rows.map((r) => ({ attempt: Number(r.attempt), outcome: r.outcome ?? null }));
}

describe("taskClaimMany", () => {
  test("one statement, one outcome per task in order: claimed, lease_active, exhausted, finished, not_found", async () => {
    const fresh = await newTask(db().sql);
    const held = await newTask(db().sql);
    const spent = await newTask(db().sql);
    const done = await newTask(db().sql);
    const ghost = randomUUID();
    await taskClaimMany(db().sql, { taskIds: [held, spent, done], ...RULES });
    // spent: its second attempt's lease expires too, past MAX_ATTEMPTS 2.
    await expireLease(db().sql, spent);
    await taskClaimMany(db().sql, { taskIds: [spent], ...RULES });
    await expireLease(db().sql, spent);
    await db().sql`UPDATE state.tasks SET status = 'succeeded' WHERE id = ${done}`;
    const got = await taskClaimMany(db().sql, {
      taskIds: [fresh, held, spent, done, ghost],
      ...RULES,
    });
    expect(got.map((o) => o.kind)).toEqual([
      "claimed",
      "lease_active",
      "exhausted",
      "finished",
      "not_found",
    ]);
    expect(got[0]).toMatchObject({ kind: "claimed", attempt: 1, orgId: "acme" });
    expect(got[2]).toEqual({ kind: "exhausted", attempt: 2 });
    expect(await attemptsOf(spent)).toEqual([
      { attempt: 1, outcome: "fenced" },
      { attempt: 2, outcome: "expired" },
    ]);
    expect(await attemptsOf(fresh)).toEqual([{ attempt: 1, outcome: null }]);
  });
});

describe("claimBatcher", () => {
  test("every task asked for 4 times at once (ids in either case) is claimed once; the others see lease_active", async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, () => newTask(db().sql)));
    const claim = claimBatcher(db().sql, RULES);
    // Merged statements then hold the same tasks in either order.
    const upper = ids.map((id) => id.toUpperCase()).reverse();
    const asks = [...ids, ...upper, ...ids, ...upper];
    const outcomes = await Promise.all(asks.map((id) => claim(id)));
    for (const id of ids) {
      const mine = outcomes.filter((_, i) => asks[i]?.toLowerCase() === id);
      expect(mine.map((o) => o.kind).sort()).toEqual([
        "claimed",
        "lease_active",
        "lease_active",
        "lease_active",
      ]);
      expect(await attemptsOf(id)).toEqual([{ attempt: 1, outcome: null }]);
    }
  });

  test("two batchers on one database (two dispatchers) still claim each task once", async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => newTask(db().sql)));
    const a = claimBatcher(db().sql, RULES);
    const b = claimBatcher(db().sql, RULES);
    const reversed = [...ids].reverse();
    const outcomes = await Promise.all([...ids.map((id) => a(id)), ...reversed.map((id) => b(id))]);
    expect(outcomes.filter((o) => o.kind === "claimed")).toHaveLength(ids.length);
    const [row] = await db().sql`
      SELECT count(*)::int AS n FROM state.task_attempts WHERE task_id = ANY(${ids}::uuid[])`;
    expect(row?.n).toBe(ids.length);
  });
});

async function claimedFence(org = "acme"): Promise<Fence> {
  const taskId = await newTask(db().sql, org);
  const [c] = await taskClaimMany(db().sql, { taskIds: [taskId], ...RULES });
  if (c?.kind !== "claimed") throw new Error(`claim: ${c?.kind}`);
  return { taskId, attempt: c.attempt, leaseToken: c.leaseToken, orgId: c.orgId };
}

async function taskState(taskId: string) {
  const [t] = await db().sql`SELECT status::text AS status FROM state.tasks WHERE id = ${taskId}`;
  const outbox = await db().sql`
    SELECT payload FROM state.outbox WHERE task_id = ${taskId} AND queue_name = 'task_completed'`;
  return { status: t?.status, completedRows: outbox.length, attempts: await attemptsOf(taskId) };
}

describe("taskCompleteMany", () => {
  test("each call fenced against its own row: only the holders complete, each once", async () => {
    const good = await claimedFence();
    const other = await claimedFence();
    const foreign = await claimedFence();
    const expired = await claimedFence();
    await expireLease(db().sql, expired.taskId);
    const got = await taskCompleteMany(db().sql, {
      calls: [
        good,
        { ...other, leaseToken: randomUUID() },
        { ...foreign, orgId: "globex" },
        expired,
        { ...other, attempt: other.attempt + 1 },
      ],
      maxBatches: 16,
    });
    expect(got).toEqual([true, false, false, false, false]);
    expect(await taskState(good.taskId)).toEqual({
      status: "succeeded",
      completedRows: 1,
      attempts: [{ attempt: 1, outcome: "completed" }],
    });
    for (const f of [other, foreign, expired]) {
      expect(await taskState(f.taskId)).toEqual({
        status: "running",
        completedRows: 0,
        attempts: [{ attempt: 1, outcome: null }],
      });
    }
    const [row] = await db().sql`
      SELECT payload FROM state.outbox WHERE task_id = ${good.taskId} AND queue_name = 'task_completed'`;
    expect(row?.payload).toMatchObject({ task_id: good.taskId, org_id: "acme", attempt: 1 });
  });
});

describe("completeBatcher", () => {
  test("concurrent completes, each task's twice: one completes it, the repeat changes nothing", async () => {
    const fences = await Promise.all(Array.from({ length: 10 }, () => claimedFence()));
    const complete = completeBatcher(db().sql, 16);
    const calls = [...fences, ...[...fences].reverse()];
    const got = await Promise.all(calls.map((f) => complete({ ...f, maxBatches: 16 })));
    for (const f of fences) {
      const mine = got.filter((_, i) => calls[i]?.taskId === f.taskId);
      expect(mine.sort()).toEqual([false, true]);
      expect(await taskState(f.taskId)).toMatchObject({ status: "succeeded", completedRows: 1 });
    }
  });
});

const message = (f: Fence, name: string) => ({
  task_id: f.taskId,
  org_id: f.orgId,
  attempt: f.attempt,
  batch_uri: `file:///store/${f.orgId}/${f.taskId}/${name}`,
  content_type: "application/x-ndjson" as const,
  batch_size_bytes: 10,
});

async function bufferRows(taskId: string): Promise<string[]> {
  const rows = await db().sql`
    SELECT payload->>'batch_uri' AS uri FROM state.outbox
    WHERE task_id = ${taskId} AND queue_name = 'buffer_queue' ORDER BY id`;
  return rows.map((r) => String(r.uri));
}

describe("taskPublishBatchMany", () => {
  test("each call fenced and capped on its own row: new, repeat, past the cap, stale, other org", async () => {
    const a = await claimedFence();
    const full = await claimedFence();
    const stale = await claimedFence();
    const foreign = await claimedFence();
    await taskPublishBatchMany(db().sql, {
      calls: [
        { ...a, message: message(a, "1.jsonl") },
        { ...full, message: message(full, "1.jsonl") },
      ],
      maxBatches: 1,
    });
    const got = await taskPublishBatchMany(db().sql, {
      calls: [
        { ...a, message: message(a, "1.jsonl") },
        { ...full, message: message(full, "2.jsonl") },
        { ...stale, leaseToken: randomUUID(), message: message(stale, "1.jsonl") },
        { ...foreign, orgId: "globex", message: message(foreign, "1.jsonl") },
      ],
      maxBatches: 1,
    });
    expect(got).toEqual([
      { held: true, accepted: true, inserted: false },
      { held: true, accepted: false, inserted: false },
      { held: false },
      { held: false },
    ]);
    expect(await bufferRows(a.taskId)).toEqual([message(a, "1.jsonl").batch_uri]);
    expect(await bufferRows(full.taskId)).toEqual([message(full, "1.jsonl").batch_uri]);
    expect(await bufferRows(stale.taskId)).toEqual([]);
    expect(await bufferRows(foreign.taskId)).toEqual([]);
  });
});

describe("publishBatcher", () => {
  test("three batches of one task at once under a cap of two: exactly two accepted, each written once", async () => {
    const fences = await Promise.all(Array.from({ length: 5 }, () => claimedFence()));
    const publish = publishBatcher(db().sql, 2);
    const calls = ["1", "2", "3"].flatMap((n) =>
      fences.map((f) => ({ ...f, message: message(f, `${n}.jsonl`), maxBatches: 2 })),
    );
    const got = await Promise.all(calls.map((c) => publish(c)));
    for (const f of fences) {
      const mine = got.filter((_, i) => calls[i]?.taskId === f.taskId);
      expect(mine.filter((o) => o.held && o.accepted && o.inserted)).toHaveLength(2);
      expect(mine.filter((o) => o.held && !o.accepted)).toHaveLength(1);
      expect(await bufferRows(f.taskId)).toHaveLength(2);
    }
  });
});

/** Every outbox row a task's attempts wrote (not its creation's wakeup), in id order. */
async function writtenRows(taskId: string): Promise<string[]> {
  const rows = await db().sql`
    SELECT queue_name, payload->>'batch_uri' AS uri FROM state.outbox
    WHERE task_id = ${taskId} AND queue_name <> 'task_wakeup' ORDER BY id`;
  return rows.map((r) => (r.uri === null ? String(r.queue_name) : `${r.queue_name} ${r.uri}`));
}

describe("completes carrying their batch", () => {
  test("one merged statement of good and stale calls: each fenced and capped on its own row", async () => {
    const [good, plain, known, full, stale, foreign, expired] = await Promise.all(
      Array.from({ length: 7 }, () => claimedFence()),
    );
    if (!good || !plain || !known || !full || !stale || !foreign || !expired)
      throw new Error("seven tasks expected");
    await expireLease(db().sql, expired.taskId);
    await taskPublishBatchMany(db().sql, {
      calls: [
        { ...known, message: message(known, "1.jsonl") },
        { ...full, message: message(full, "1.jsonl") },
      ],
      maxBatches: 1,
    });
    const got = await taskCompleteMany(db().sql, {
      calls: [
        { ...good, message: message(good, "1.jsonl") },
        plain,
        { ...known, message: message(known, "1.jsonl") },
        { ...full, message: message(full, "2.jsonl") },
        { ...stale, leaseToken: randomUUID(), message: message(stale, "1.jsonl") },
        { ...foreign, orgId: "globex", message: message(foreign, "1.jsonl") },
        { ...expired, message: message(expired, "1.jsonl") },
      ],
      maxBatches: 1,
    });
    expect(got).toEqual([true, true, true, false, false, false, false]);
    const uri = (f: Fence) => `buffer_queue ${message(f, "1.jsonl").batch_uri}`;
    // A batch's row comes before its task_completed, and a batch already published is not written again.
    expect(await writtenRows(good.taskId)).toEqual([uri(good), "task_completed"]);
    expect(await writtenRows(plain.taskId)).toEqual(["task_completed"]);
    expect(await writtenRows(known.taskId)).toEqual([uri(known), "task_completed"]);
    expect(await writtenRows(full.taskId)).toEqual([uri(full)]);
    for (const f of [stale, foreign, expired]) {
      expect(await writtenRows(f.taskId)).toEqual([]);
      expect(await taskState(f.taskId)).toEqual({
        status: "running",
        completedRows: 0,
        attempts: [{ attempt: 1, outcome: null }],
      });
    }
  });

  test("completeBatcher: each task completed with its batch twice at once → one of each row", async () => {
    const fences = await Promise.all(Array.from({ length: 10 }, () => claimedFence()));
    const complete = completeBatcher(db().sql, 16);
    const calls = [...fences, ...[...fences].reverse()].map((f) => ({
      ...f,
      message: message(f, "1.jsonl"),
      maxBatches: 16,
    }));
    const got = await Promise.all(calls.map((c) => complete(c)));
    for (const f of fences) {
      const mine = got.filter((_, i) => calls[i]?.taskId === f.taskId);
      expect(mine.sort()).toEqual([false, true]);
      const batch = `buffer_queue ${message(f, "1.jsonl").batch_uri}`;
      expect(await writtenRows(f.taskId)).toEqual([batch, "task_completed"]);
    }
  });
});

async function leaseEndOf(taskId: string): Promise<Date> {
  const [t] = await db().sql`SELECT lease_expires_at FROM state.tasks WHERE id = ${taskId}`;
  if (!(t?.lease_expires_at instanceof Date)) throw new Error("no lease");
  return t.lease_expires_at;
}

describe("leaseRenewMany", () => {
  test("each heartbeat fenced against its own row: only the holders' leases move", async () => {
    const good = await claimedFence();
    const stale = await claimedFence();
    const foreign = await claimedFence();
    const expired = await claimedFence();
    await expireLease(db().sql, expired.taskId);
    const before = await Promise.all([stale, foreign, expired].map((f) => leaseEndOf(f.taskId)));
    const got = await leaseRenewMany(db().sql, {
      fences: [
        good,
        { ...stale, leaseToken: randomUUID() },
        { ...foreign, orgId: "globex" },
        expired,
      ],
      leaseMs: 90_000,
    });
    expect(got[0]).toEqual(await leaseEndOf(good.taskId));
    expect((got[0]?.getTime() ?? 0) - Date.now()).toBeGreaterThan(60_000);
    expect(got.slice(1)).toEqual([null, null, null]);
    const after = await Promise.all([stale, foreign, expired].map((f) => leaseEndOf(f.taskId)));
    expect(after).toEqual(before);
  });

  test("renewBatcher: concurrent heartbeats, each task's three times, all renewed, each its own answer", async () => {
    const fences = await Promise.all(Array.from({ length: 8 }, () => claimedFence()));
    const renew = renewBatcher(db().sql, 90_000);
    const [first] = fences;
    if (first === undefined) throw new Error("no task");
    const calls = [...fences, ...fences, { ...first, leaseToken: randomUUID() }, ...fences];
    const got = await Promise.all(calls.map((f) => renew(f)));
    expect(got.filter((at) => at === null)).toHaveLength(1);
    expect(got[fences.length * 2]).toBeNull();
  });
});
