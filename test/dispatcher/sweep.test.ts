import { beforeEach, describe, expect, test } from "bun:test";
import type { Sql } from "../../src/db/connect";
import { taskSweep, taskSweepDue } from "../../src/dispatcher/sql/sweep";
import { outboxPendingCount } from "../../src/outbox/sql";
import { createTasks } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";

// The reaper's sweep of queued tasks (invariant 8 against a worker that acks a wakeup
// without claiming), its SQL against a real database. The database clock cannot be moved,
// so the periods are short and the tests wait on the clock's conditions.
const db = useFreshDatabase();
const sql = () => db().sql;

const PERIOD_MS = 400;
const sweep = (p: { waiting?: number | null; limit?: number; periodMs?: number } = {}) =>
  taskSweep(sql(), {
    limit: p.limit ?? 100,
    periodMs: p.periodMs ?? PERIOD_MS,
    waiting: p.waiting === undefined ? null : p.waiting,
  });

/** Creates `count` tasks one after the other (distinct created_at), their wakeups published. */
async function queued(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(...(await createTasks(sql(), { orgId: "acme", payload: { alerts: 1 }, count: 1 })));
  }
  await sql()`UPDATE state.outbox SET status = 'sent', sent_at = now() WHERE status = 'pending'`;
  return ids;
}

/** Waits until the database clock is `ms` past `column` of the task (created_at, swept_at, retry_at). */
async function clockPast(id: string, column: string, ms: number): Promise<void> {
  await waitFor(
    async () => {
      const [r] = await sql()`
        SELECT now() >= ${sql()(column)} + make_interval(secs => ${ms}::float8 / 1000) AS past
        FROM state.tasks WHERE id = ${id}`;
      return r?.past === true;
    },
    { what: `the clock ${ms} ms past ${column} of ${id}`, timeoutMs: 10_000 },
  );
}

/** The sweep's wakeups of a task: its task_wakeup outbox rows with an attempt (creation's has none). */
async function sweptRows(s: Sql, id: string) {
  const rows = await s`
    SELECT o.payload, o.attempt, o.status::text AS status, o.created_at, t.swept_at
    FROM state.outbox o JOIN state.tasks t ON t.id = o.task_id
    WHERE o.task_id = ${id} AND o.queue_name = 'task_wakeup' AND o.attempt IS NOT NULL
    ORDER BY o.id`;
  return [...rows];
}

beforeEach(async () => {
  await sql()`TRUNCATE state.tasks, state.outbox, state.queue_messages, state.task_attempts`;
});

describe("the sweep of queued tasks", () => {
  test("a task unclaimed for the period gets one fresh wakeup, then none until the next period", async () => {
    const [id = ""] = await queued(1);
    expect(await taskSweepDue(sql(), { periodMs: PERIOD_MS })).toBe(false);
    expect(await sweep()).toBe(0);
    await clockPast(id, "created_at", PERIOD_MS);
    expect(await taskSweepDue(sql(), { periodMs: PERIOD_MS })).toBe(true);
    expect(await sweep()).toBe(1);
    const [first, ...rest] = await sweptRows(sql(), id);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ payload: { task_id: id }, attempt: 0, status: "pending" });
    expect(first?.swept_at).toEqual(first?.created_at);
    // Swept now: not due again within a period.
    expect(await taskSweepDue(sql(), { periodMs: PERIOD_MS })).toBe(false);
    expect(await sweep()).toBe(0);
    await clockPast(id, "swept_at", PERIOD_MS);
    expect(await sweep()).toBe(1);
    const rows = await sweptRows(sql(), id);
    expect(rows).toHaveLength(2);
    const gap = Number(rows[1]?.created_at) - Number(rows[0]?.created_at);
    expect(gap).toBeGreaterThanOrEqual(PERIOD_MS);
  });

  test("a task waiting for its retry's backoff is swept only a period after retry_at", async () => {
    const [id = ""] = await queued(1);
    await sql()`UPDATE state.tasks SET attempt = 1, last_error = 'retryable',
      retry_at = now() + interval '800 milliseconds' WHERE id = ${id}`;
    await clockPast(id, "created_at", PERIOD_MS);
    expect(await sweep()).toBe(0);
    await clockPast(id, "retry_at", 0);
    expect(await sweep()).toBe(0);
    await clockPast(id, "retry_at", PERIOD_MS);
    expect(await sweep()).toBe(1);
    const [row] = await db().sql`
      SELECT o.created_at >= t.retry_at + make_interval(secs => ${PERIOD_MS}::float8 / 1000) AS after,
             o.attempt
      FROM state.outbox o JOIN state.tasks t ON t.id = o.task_id
      WHERE o.task_id = ${id} AND o.attempt IS NOT NULL`;
    expect(row).toEqual({ after: true, attempt: 1 });
  });

  test("running, succeeded and failed tasks are never swept", async () => {
    const [running = "", succeeded = "", failed = ""] = await queued(3);
    await sql()`UPDATE state.tasks SET status = 'running', attempt = 1,
      lease_token = gen_random_uuid(), lease_expires_at = now() + interval '1 hour' WHERE id = ${running}`;
    await sql()`UPDATE state.tasks SET status = 'succeeded', attempt = 1, finished_at = now() WHERE id = ${succeeded}`;
    await sql()`UPDATE state.tasks SET status = 'failed', attempt = 1, finished_at = now() WHERE id = ${failed}`;
    await clockPast(failed, "created_at", PERIOD_MS);
    expect(await taskSweepDue(sql(), { periodMs: PERIOD_MS })).toBe(false);
    expect(await sweep({ waiting: 0 })).toBe(0);
    const [n] = await sql()`SELECT count(*)::int AS n FROM state.outbox WHERE attempt IS NOT NULL`;
    expect(n?.n).toBe(0);
  });

  test("as many wakeups waiting as queued tasks: none swept; fewer: the oldest, as many as are missing", async () => {
    const ids = await queued(4);
    await clockPast(ids[3] ?? "", "created_at", PERIOD_MS);
    expect(await sweep({ waiting: 4 })).toBe(0);
    expect(await sweep({ waiting: 9 })).toBe(0);
    // Four queued, two wakeups waiting: two are missing.
    expect(await sweep({ waiting: 2 })).toBe(2);
    const swept = await sql()`
      SELECT id::text AS id FROM state.tasks WHERE swept_at IS NOT NULL ORDER BY created_at`;
    expect(swept.map((r) => r.id)).toEqual(ids.slice(0, 2));
    expect(await sweep({ waiting: 0 })).toBe(2);
    expect(await sweep({ waiting: 0 })).toBe(0);
  });

  test("the outbox's pending wakeups count as waiting; other queues' rows do not", async () => {
    await createTasks(sql(), { orgId: "acme", payload: { alerts: 1 }, count: 2 });
    await sql()`INSERT INTO state.outbox (queue_name, payload) VALUES ('task_completed', '{}')`;
    expect(await outboxPendingCount(sql(), { queue: "task_wakeup" })).toBe(2);
    expect(await outboxPendingCount(sql())).toBe(3);
  });

  test("unknown waiting (null): the period alone decides, up to the limit, oldest first", async () => {
    const ids = await queued(5);
    await clockPast(ids[4] ?? "", "created_at", PERIOD_MS);
    expect(await sweep({ waiting: null, limit: 2 })).toBe(2);
    expect(await sweep({ waiting: null, limit: 2 })).toBe(2);
    expect(await sweep({ waiting: null, limit: 2 })).toBe(1);
    expect(await sweep({ waiting: null, limit: 2 })).toBe(0);
    const rows = await sql()`
      SELECT t.id::text AS id, count(o.id)::int AS n FROM state.tasks t
      LEFT JOIN state.outbox o ON o.task_id = t.id AND o.attempt IS NOT NULL
      GROUP BY t.id, t.created_at ORDER BY t.created_at`;
    expect(rows.map((r) => [r.id, r.n])).toEqual(ids.map((id) => [id, 1]));
  });

  test("a task another transaction holds (a claim in progress) is passed over, not waited for", async () => {
    const ids = await queued(3);
    await clockPast(ids[2] ?? "", "created_at", PERIOD_MS);
    const [held = ""] = ids;
    const other = await sql().reserve();
    try {
      await other`BEGIN`;
      await other`SELECT id FROM state.tasks WHERE id = ${held} FOR UPDATE`;
      expect(await sweep()).toBe(2);
      await other`ROLLBACK`;
    } finally {
      other.release();
    }
    expect(await sweptRows(sql(), held)).toEqual([]);
    expect(await sweep()).toBe(1);
    expect(await sweptRows(sql(), held)).toHaveLength(1);
  });
});
