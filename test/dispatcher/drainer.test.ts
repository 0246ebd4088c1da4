import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { QueueName } from "../../src/contracts/queue";
import type { Db } from "../../src/db/connect";
import {
  DRAIN_BATCH,
  OUTBOX_ROUND_ISOLATING,
  OUTBOX_ROW_FAILED,
  OUTBOX_ROW_REJECTED,
  outboxDrainOnce,
  type PublisherFor,
} from "../../src/dispatcher/drain";
import { createWakeup } from "../../src/dispatcher/drainer";
import { createLogger, type Fields, type Logger } from "../../src/log";
import { outboxInsert } from "../../src/outbox/sql";
import { MessageRefusedError, type Outgoing } from "../../src/queue/seam";
import { useFreshDatabase } from "../support/db";

/** The outbox module and the drainer: contracts at insert, rejected rows, the queue seam. */

const db = useFreshDatabase();

function recordingLog(): Logger & { lines: Array<{ msg: string; fields: Fields }> } {
  const lines: Array<{ msg: string; fields: Fields }> = [];
  const note = (msg: string, fields: Fields = {}) => {
    lines.push({ msg, fields });
  };
  return {
    lines,
    debug: note,
    info: note,
    warn: note,
    error: note,
    child: () => createLogger("unused"),
  };
}

const drain = (log: Logger, publisherFor: PublisherFor = (tx) => db().queue().publisher(tx)) =>
  outboxDrainOnce(db().sql, { limit: DRAIN_BATCH, log, publisherFor });

async function reset() {
  await db().sql`DELETE FROM state.outbox`;
  await db().sql`DELETE FROM state.queue_messages`;
}

describe("outbox module", () => {
  test("an insert whose payload breaks its queue's contract throws and writes nothing", async () => {
    await reset();
    const bad = JSON.parse('{"task_id": "not-a-uuid"}');
    const rows = [{ queue: "task_wakeup" as const, payload: bad, taskId: null, attempt: null }];
    await expect(outboxInsert(db().sql, { rows, notify: false })).rejects.toThrow(
      "breaks its contract",
    );
    const [n] = await db().sql`SELECT count(*)::int AS n FROM state.outbox`;
    expect(n?.n).toBe(0);
  });
});

describe("drainer", () => {
  test(`${DRAIN_BATCH + 100} rows that break their contract never block the good row behind them`, async () => {
    await reset();
    const task = randomUUID();
    await db().sql`
      INSERT INTO state.outbox (queue_name, payload)
      SELECT CASE WHEN i % 2 = 0 THEN 'task_wakeup' ELSE 'no_such_queue' END, jsonb_build_object('task_id', 'x' || i)
      FROM generate_series(1, ${DRAIN_BATCH + 100}) AS i`;
    await outboxInsert(db().sql, {
      rows: [{ queue: "task_wakeup", payload: { task_id: task }, taskId: task, attempt: null }],
      notify: false,
    });
    const log = recordingLog();
    expect(await drain(log)).toEqual({ published: 0, rejected: DRAIN_BATCH });
    expect(await drain(log)).toEqual({ published: 1, rejected: 100 });
    expect(await drain(log)).toEqual({ published: 0, rejected: 0 });
    const counts = await db().sql`
      SELECT status::text AS status, count(*)::int AS n FROM state.outbox GROUP BY status ORDER BY status`;
    expect([...counts]).toEqual([
      { status: "rejected", n: DRAIN_BATCH + 100 },
      { status: "sent", n: 1 },
    ]);
    const [reasons] = await db().sql`
      SELECT count(*) FILTER (WHERE error LIKE 'no such queue: no_such_queue')::int AS queue,
             count(*) FILTER (WHERE error LIKE 'payload breaks the task_wakeup contract%')::int AS payload
      FROM state.outbox WHERE status = 'rejected'`;
    expect(reasons).toEqual({ queue: 300, payload: 300 });
    const rejectedLogs = log.lines.filter((l) => l.msg === OUTBOX_ROW_REJECTED);
    expect(rejectedLogs).toHaveLength(DRAIN_BATCH + 100);
    expect(rejectedLogs[0]?.fields.outbox_id).toBeDefined();
    const [msg] = await db().sql`SELECT payload FROM state.queue_messages`;
    expect(msg?.payload).toEqual({ task_id: task });
  });

  test("the rows a round takes are seen sent by no one until it has published them (invariant 4)", async () => {
    await reset();
    const tasks = [randomUUID(), randomUUID(), randomUUID()];
    await outboxInsert(db().sql, {
      rows: tasks.map((t) => ({
        queue: "task_wakeup" as const,
        payload: { task_id: t },
        taskId: t,
        attempt: 1,
      })),
      notify: false,
    });
    const seenDuringPublish: string[] = [];
    const watching: PublisherFor = (tx: Db) => {
      const inner = db().queue().publisher(tx);
      return {
        async publish(queue, messages) {
          // Another session, while the round publishes: its mark is not committed yet.
          const rows = await db().sql`SELECT status::text AS status FROM state.outbox ORDER BY id`;
          seenDuringPublish.push(...rows.map((r) => String(r.status)));
          return inner.publish(queue, messages);
        },
      };
    };
    expect(await drain(recordingLog(), watching)).toEqual({ published: 3, rejected: 0 });
    expect(seenDuringPublish).toEqual(["pending", "pending", "pending"]);
    const after = await db().sql`
      SELECT status::text AS status, sent_at IS NOT NULL AS stamped FROM state.outbox ORDER BY id`;
    expect([...after]).toEqual(tasks.map(() => ({ status: "sent", stamped: true })));
    const published = await db()
      .sql`SELECT payload->>'task_id' AS task FROM state.queue_messages ORDER BY id`;
    // Oldest first, as the rows were written.
    expect(published.map((m) => m.task)).toEqual(tasks);
  });

  test("a row taken and then rejected in the same round ends rejected, with no sent time", async () => {
    await reset();
    await db().sql`
      INSERT INTO state.outbox (queue_name, payload) VALUES ('task_wakeup', '{"task_id": "nope"}')`;
    expect(await drain(recordingLog())).toEqual({ published: 0, rejected: 1 });
    const [row] = await db().sql`SELECT status::text AS status, sent_at FROM state.outbox`;
    expect(row).toEqual({ status: "rejected", sent_at: null });
  });

  test("each row goes through the seam with its id and creation time as dedupe id, and its available_at", async () => {
    await reset();
    const task = randomUUID();
    const [now, later] = await outboxInsert(db().sql, {
      rows: [
        { queue: "task_wakeup", payload: { task_id: task }, taskId: task, attempt: 1 },
        {
          queue: "task_wakeup",
          payload: { task_id: task },
          taskId: task,
          attempt: 2,
          delayMs: 60_000,
        },
      ],
      notify: false,
    });
    const [row] = await db().sql`SELECT available_at FROM state.outbox WHERE id = ${later ?? ""}`;
    // The row's created_at to the microsecond, as the database keeps it.
    const [created] = await db().sql`
      SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS at,
             (extract(epoch FROM created_at) * 1000000)::bigint::text AS us
      FROM state.outbox WHERE id = ${now ?? ""}`;
    const micros = String(created?.us);
    expect(new Date(`${String(created?.at)}Z`).getTime()).toBe(Math.floor(Number(micros) / 1000));
    const seen: Array<Outgoing<QueueName>> = [];
    const recording: PublisherFor = (tx: Db) => {
      const inner = db().queue().publisher(tx);
      return {
        publish(queue, messages) {
          seen.push(...messages);
          return inner.publish(queue, messages);
        },
      };
    };
    expect(await drain(recordingLog(), recording)).toEqual({ published: 2, rejected: 0 });
    expect(seen).toEqual([
      // Both rows were written by one statement: one created_at.
      { payload: { task_id: task }, dedupeId: `outbox:${now}@${micros}` },
      {
        payload: { task_id: task },
        dedupeId: `outbox:${later}@${micros}`,
        availableAt: row?.available_at,
      },
    ]);
    const messages = await db().sql`
      SELECT available_at <= now() AS visible FROM state.queue_messages ORDER BY id`;
    expect(messages.map((m) => m.visible)).toEqual([true, false]);
  });

  test("a publish that fails leaves every row pending (at least once)", async () => {
    await reset();
    const task = randomUUID();
    await outboxInsert(db().sql, {
      rows: [{ queue: "task_wakeup", payload: { task_id: task }, taskId: task, attempt: null }],
      notify: false,
    });
    const broken: PublisherFor = () => ({
      publish: () => Promise.reject(new Error("queue down")),
    });
    await expect(drain(recordingLog(), broken)).rejects.toThrow("queue down");
    const [row] = await db().sql`SELECT status::text AS status FROM state.outbox`;
    expect(row?.status).toBe("pending");
    expect(await drain(recordingLog())).toEqual({ published: 1, rejected: 0 });
  });
});

/** Three wakeup rows, the middle one for `bad`; returns the three task ids. */
async function threeRows(): Promise<[string, string, string]> {
  await reset();
  const ids: [string, string, string] = [randomUUID(), randomUUID(), randomUUID()];
  await outboxInsert(db().sql, {
    rows: ids.map((id) => ({
      queue: "task_wakeup" as const,
      payload: { task_id: id },
      taskId: id,
      attempt: null,
    })),
    notify: false,
  });
  return ids;
}

/** The real publisher, except that any publish carrying `bad`'s wakeup fails with `error()`. */
function failingFor(bad: string, error: () => Error): PublisherFor & { calls: number } {
  const p = (tx: Db) => {
    const inner = db().queue().publisher(tx);
    return {
      publish<Q extends QueueName>(queue: Q, messages: readonly Outgoing<Q>[]) {
        p.calls += 1;
        const hit = messages.some((m) => JSON.stringify(m.payload).includes(bad));
        return hit ? Promise.reject(error()) : inner.publish(queue, messages);
      },
    };
  };
  p.calls = 0;
  return p;
}

async function statuses(): Promise<Array<{ task: string; status: string; error: string | null }>> {
  const rows = await db().sql`
    SELECT payload->>'task_id' AS task, status::text AS status, error FROM state.outbox ORDER BY id`;
  return rows.map((r) => ({ task: String(r.task), status: String(r.status), error: r.error }));
}

async function published(): Promise<string[]> {
  const rows = await db()
    .sql`SELECT payload->>'task_id' AS task FROM state.queue_messages ORDER BY id`;
  return rows.map((r) => String(r.task));
}

describe("drainer: a publish that always fails for one row", () => {
  test("refused for good (MessageRefusedError): the round goes row by row, that row is rejected with the reason, the others published", async () => {
    const [a, bad, c] = await threeRows();
    const log = recordingLog();
    const refusing = failingFor(
      bad,
      () => new MessageRefusedError("message larger than the broker takes"),
    );
    expect(await drain(log, refusing)).toEqual({ published: 2, rejected: 1 });
    expect(await statuses()).toEqual([
      { task: a, status: "sent", error: null },
      {
        task: bad,
        status: "rejected",
        error: "the queue refused it: message larger than the broker takes",
      },
      { task: c, status: "sent", error: null },
    ]);
    expect(await published()).toEqual([a, c]);
    expect(log.lines.map((l) => l.msg)).toEqual([OUTBOX_ROUND_ISOLATING, OUTBOX_ROW_REJECTED]);
    expect(log.lines[1]?.fields).toMatchObject({ reason: expect.stringContaining("larger") });
    // Nothing is held back any more.
    expect(await drain(log, refusing)).toEqual({ published: 0, rejected: 0 });
  });

  test("a data exception from the database (SQLSTATE class 22) is refused for good too", async () => {
    const [, bad] = await threeRows();
    const dataError = () =>
      new Error("publishing 1 message(s) to task_wakeup", {
        cause: Object.assign(new Error("unsupported Unicode escape sequence"), { code: "22P05" }),
      });
    expect(await drain(recordingLog(), failingFor(bad, dataError))).toEqual({
      published: 2,
      rejected: 1,
    });
    expect((await statuses())[1]).toMatchObject({ status: "rejected" });
  });

  test("a transient failure (the queue's database unreachable) fails the round whole: tried once, nothing rejected", async () => {
    const [, bad] = await threeRows();
    const down = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const failing = failingFor(bad, down);
    await expect(drain(recordingLog(), failing)).rejects.toThrow("ECONNREFUSED");
    expect(failing.calls).toBe(1);
    expect((await statuses()).map((r) => r.status)).toEqual(["pending", "pending", "pending"]);
    expect(await published()).toEqual([]);
  });

  test("a failure of one row that is neither: the others are published, the row stays pending; alone it fails the round", async () => {
    const [a, bad, c] = await threeRows();
    const log = recordingLog();
    const odd = failingFor(bad, () => new Error("something odd"));
    expect(await drain(log, odd)).toEqual({ published: 2, rejected: 0 });
    expect((await statuses()).map((r) => r.status)).toEqual(["sent", "pending", "sent"]);
    expect(await published()).toEqual([a, c]);
    expect(log.lines.filter((l) => l.msg === OUTBOX_ROW_FAILED)).toHaveLength(1);
    await expect(drain(log, odd)).rejects.toThrow("something odd");
    expect((await statuses())[1]?.status).toBe("pending");
    // Once the backend takes it, it goes like any other.
    expect(await drain(log)).toEqual({ published: 1, rejected: 0 });
  });
});

describe("the drainer's wakeup", () => {
  test("a wake calls the drainer's listener until it stops listening; waking nobody is harmless", () => {
    const wakeup = createWakeup();
    wakeup.wake();
    let woken = 0;
    const unlisten = wakeup.listen(() => {
      woken += 1;
    });
    wakeup.wake();
    wakeup.wake();
    expect(woken).toBe(2);
    unlisten();
    wakeup.wake();
    expect(woken).toBe(2);
  });
});
