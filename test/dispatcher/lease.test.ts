import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_OBJECT_STORE_URL, type TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";
import {
  batchOf,
  call,
  claim,
  claimRaw,
  drained,
  fence,
  footprint,
  leaseExpired,
  messagesFor,
  newTask,
} from "./_client";

// Invariants 2 and 8 against a real dispatcher with a short lease and two attempts at most.
const db = useFreshDatabase();
let d: TestDispatcher;

beforeAll(async () => {
  d = await startDispatcher({
    databaseUrl: db().url,
    env: { LEASE_DURATION_MS: "1200", MAX_ATTEMPTS: "2" },
  });
});
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});

describe("leases and fencing", () => {
  test("a created task is claimed with attempt 1; a second claim while the lease is live → 409 lease_active", async () => {
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    expect(c.attempt).toBe(1);
    expect(c.org_id).toBe("acme");
    const again = await claimRaw(d, id);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ error: "lease_active" });
    const [row] = await db().sql`SELECT status, attempt FROM state.tasks WHERE id = ${id}`;
    expect(row).toEqual({ status: "running", attempt: 1 });
  });

  test("after expiry a claim gets attempt 2; attempt 1's heartbeat, buffer-publish and complete → 409 and change nothing", async () => {
    const id = await newTask(db().sql);
    const first = await claim(d, id);
    await leaseExpired(db().sql, id);
    const second = await claim(d, id);
    expect(second.attempt).toBe(2);
    expect(second.lease_token).not.toBe(first.lease_token);
    await drained(db().sql);
    const before = await footprint(db().sql, id);
    const stale = [
      await call(d, "heartbeat", first.capability_token, fence(first)),
      await call(
        d,
        "buffer-publish",
        first.capability_token,
        batchOf(first, TEST_OBJECT_STORE_URL),
      ),
      await call(d, "complete", first.capability_token, fence(first)),
      // attempt 2's number with attempt 1's lease token: still stale (attempt 2's token is bound to 2)
      await call(d, "heartbeat", second.capability_token, {
        ...fence(second),
        lease_token: first.lease_token,
      }),
    ];
    for (const res of stale) {
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ error: "stale_lease" });
    }
    await drained(db().sql);
    expect(await footprint(db().sql, id)).toEqual(before);
    expect(await messagesFor(db().sql, "buffer_queue", id)).toHaveLength(0);
    // the current attempt still works
    expect((await call(d, "heartbeat", second.capability_token, fence(second))).status).toBe(200);
  }, 20_000);

  test("a heartbeat after the lease expired → 409 stale_lease even with no newer attempt", async () => {
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    await leaseExpired(db().sql, id);
    const before = await footprint(db().sql, id);
    const res = await call(d, "heartbeat", c.capability_token, fence(c));
    expect(res.status).toBe(409);
    expect(await footprint(db().sql, id)).toEqual(before);
  }, 20_000);

  test("past MAX_ATTEMPTS the claim answers 409 task_finished and the task is failed with a last_error", async () => {
    const id = await newTask(db().sql);
    await claim(d, id);
    await leaseExpired(db().sql, id);
    await claim(d, id);
    await leaseExpired(db().sql, id);
    const res = await claimRaw(d, id);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "task_finished" });
    const [row] = await db()
      .sql`SELECT status, attempt, last_error FROM state.tasks WHERE id = ${id}`;
    expect(row?.status).toBe("failed");
    expect(row?.attempt).toBe(2);
    expect(String(row?.last_error)).toContain("MAX_ATTEMPTS");
    expect((await claimRaw(d, id)).status).toBe(409);
  }, 30_000);

  test("ten concurrent claims of one task: exactly one wins", async () => {
    const id = await newTask(db().sql);
    const results = await Promise.all(Array.from({ length: 10 }, () => claimRaw(d, id)));
    const codes = results.map((r) => r.status).sort();
    expect(codes).toEqual([200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
  });

  test("claiming an unknown task → 404; a finished one → 409 task_finished", async () => {
    const unknown = await claimRaw(d, crypto.randomUUID());
    expect(unknown.status).toBe(404);
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    expect((await call(d, "complete", c.capability_token, fence(c))).status).toBe(200);
    const res = await claimRaw(d, id);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: "task_finished" });
  });

  test("the reaper wakes a running task whose lease expired, once per expiry", async () => {
    const id = await newTask(db().sql);
    await drained(db().sql);
    // The worker consumed (acked) the original wakeup.
    await db().sql`DELETE FROM state.queue_messages WHERE payload->>'task_id' = ${id}`;
    await claim(d, id);
    const woken = await waitFor(
      async () => {
        const m = await messagesFor(db().sql, "task_wakeup", id);
        return m.length > 0 ? m : undefined;
      },
      { what: "a task_wakeup from the reaper", timeoutMs: 10_000 },
    );
    expect(woken).toHaveLength(1);
    // Several reaper rounds later (its interval is a quarter of the lease), still one.
    await waitFor(
      async () => {
        const [r] = await db()
          .sql`SELECT now() > lease_expires_at + interval '1500 milliseconds' AS later FROM state.tasks WHERE id = ${id}`;
        return r?.later === true;
      },
      { what: "several reaper rounds", timeoutMs: 10_000 },
    );
    await drained(db().sql);
    expect(await messagesFor(db().sql, "task_wakeup", id)).toHaveLength(1);
    const rows = await db()
      .sql`SELECT attempt FROM state.outbox WHERE task_id = ${id} AND queue_name = 'task_wakeup' AND attempt IS NOT NULL`;
    expect([...rows]).toEqual([{ attempt: 1 }]);
  }, 30_000);

  test("a stored payload that breaks the contract fails the task at its first claim, with the reason", async () => {
    const [row] = await db().sql`
      INSERT INTO state.tasks (org_id, payload) VALUES ('acme', ${db().sql.json(["not", "an", "object"])})
      RETURNING id::text AS id`;
    const id = String(row?.id);
    const r = await claimRaw(d, id);
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: "task_finished" });
    const [task] = await db()
      .sql`SELECT status, attempt, last_error FROM state.tasks WHERE id = ${id}`;
    expect(task?.status).toBe("failed");
    expect(task?.attempt).toBe(1);
    expect(String(task?.last_error)).toContain("payload breaks the task payload contract");
    const again = await claimRaw(d, id);
    expect(again.status).toBe(409);
  });
});
