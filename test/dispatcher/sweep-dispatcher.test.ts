import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { REAPER_LOG } from "../../src/dispatcher/reaper";
import type { QueueConsumer } from "../../src/queue/seam";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, type TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";
import { claim, messagesFor, newTask } from "./_client";

// The sweep in a real dispatcher: VISIBILITY_TIMEOUT_MS × MAX_RECEIVES = 600 ms is its
// period, and it looks every quarter lease (300 ms).
const db = useFreshDatabase();
const sql = () => db().sql;
const PERIOD_MS = 600;
let d: TestDispatcher;
let wakeups: QueueConsumer<"task_wakeup">;

beforeAll(async () => {
  d = await startDispatcher({
    databaseUrl: db().url,
    env: { LEASE_DURATION_MS: "1200", VISIBILITY_TIMEOUT_MS: "300", MAX_RECEIVES: "2" },
  });
  wakeups = await db()
    .queue()
    .consumer("task_wakeup", { visibilityTimeoutMs: 60_000, maxReceives: 2 });
});
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});
beforeEach(async () => {
  await sql()`TRUNCATE state.tasks, state.outbox, state.queue_messages, state.task_attempts`;
});

/** Receives the task's wakeup, as a worker does (the only one in the queue). */
async function received(id: string) {
  const m = await waitFor(
    async () => (await wakeups.receive(1)).find((m) => m.payload.task_id === id),
    { what: `the wakeup of ${id}`, timeoutMs: 10_000 },
  );
  return m;
}

/**
 * The sweep's outbox rows for the task: creation's row names no attempt, and
 * these tasks are swept before their first claim (attempt 0). Once claimed,
 * a 1,200 ms lease can expire during a check on a loaded machine, and the
 * lease reaper's wakeup names attempt 1: not a sweep.
 */
async function sweptRows(id: string) {
  return [
    ...(await sql()`
      SELECT id FROM state.outbox
      WHERE task_id = ${id} AND queue_name = 'task_wakeup' AND attempt = 0`),
  ];
}

async function sweptAt(id: string): Promise<unknown> {
  const [r] = await sql()`SELECT swept_at FROM state.tasks WHERE id = ${id}`;
  return r?.swept_at;
}

/** Waits until the database clock is `ms` past `column` of the task (created_at, swept_at). */
async function clockPast(id: string, column: string, ms: number): Promise<void> {
  await waitFor(
    async () => {
      const [r] = await sql()`
        SELECT now() >= ${sql()(column)} + make_interval(secs => ${ms}::float8 / 1000) AS past
        FROM state.tasks WHERE id = ${id}`;
      return r?.past === true;
    },
    { what: `the clock ${ms} ms past ${column} of ${id}`, timeoutMs: 15_000 },
  );
}

describe("the dispatcher's sweep of queued tasks", () => {
  test("a wakeup still waiting in the queue is never duplicated; once acked without a claim, it is", async () => {
    const id = await newTask(sql());
    await waitFor(async () => (await messagesFor(sql(), "task_wakeup", id)).length === 1, {
      what: "the wakeup published",
    });
    // Four periods, a dozen rounds of the reaper: the wakeup waits (ready), so no duplicate.
    await clockPast(id, "created_at", 4 * PERIOD_MS);
    expect(await sweptRows(id)).toEqual([]);
    expect(await messagesFor(sql(), "task_wakeup", id)).toHaveLength(1);
    // A worker takes it and acks it without claiming: the next round finds it gone.
    expect(await wakeups.ack(await received(id))).toBe(true);
    const again = await received(id);
    // Claimed from the fresh wakeup at once: left queued for another period (600 ms,
    // less than the checks below take on a loaded machine), it is rightly swept again.
    expect((await claim(d, id)).attempt).toBe(1);
    expect(await sweptRows(id)).toHaveLength(1);
    const line = await d.role.waitForLog((l) => l.msg === REAPER_LOG.swept, "the sweep's line");
    expect(line).toMatchObject({ count: 1, period_ms: PERIOD_MS });
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    expect(metrics).toContain("harness_dispatcher_queued_swept_total 1\n");
    // Running now: never swept again.
    const swept = await sweptAt(id);
    expect(swept).toBeInstanceOf(Date);
    expect(await wakeups.ack(again)).toBe(true);
    await clockPast(id, "swept_at", 2 * PERIOD_MS);
    expect(await sweptRows(id)).toHaveLength(1);
    expect(await sweptAt(id)).toEqual(swept);
  }, 60_000);

  test("a wakeup dead-lettered: the task is woken again, once per period while unclaimed", async () => {
    const id = await newTask(sql());
    const m = await received(id);
    expect(await wakeups.deadLetter(m, "dispatcher unreachable (by hand)")).toBe(true);
    const first = await received(id);
    expect(await sweptRows(id)).toHaveLength(1);
    // Dead-lettered again, the next period brings another; never two within one period.
    expect(await wakeups.deadLetter(first, "again")).toBe(true);
    await received(id);
    const rows = await sql()`
      SELECT created_at FROM state.outbox
      WHERE task_id = ${id} AND queue_name = 'task_wakeup' AND attempt IS NOT NULL ORDER BY id`;
    expect(rows).toHaveLength(2);
    const gap = Number(rows[1]?.created_at) - Number(rows[0]?.created_at);
    expect(gap).toBeGreaterThanOrEqual(PERIOD_MS);
    expect((await claim(d, id)).attempt).toBe(1);
  }, 60_000);
});
