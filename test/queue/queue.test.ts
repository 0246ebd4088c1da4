import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { connect } from "../../src/db/connect";
import {
  ack,
  deadLetter,
  depths,
  extendVisibility,
  listDeadLetters,
  publish,
  publishBatch,
  receive,
  recordError,
  redrive,
} from "../../src/queue";
import { useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";

const db = useFreshDatabase();
const opts = { max: 10, visibilityTimeoutMs: 300, maxReceives: 5 };

async function clear() {
  await db().sql`DELETE FROM state.queue_messages`;
}

describe("pgqueue", () => {
  test("publish then receive returns the message with its payload", async () => {
    await clear();
    const taskId = randomUUID();
    const id = await publish(db().sql, "task_wakeup", { task_id: taskId });
    const got = await receive(db().sql, "task_wakeup", opts);
    expect(got).toHaveLength(1);
    expect(got[0]?.id).toBe(id);
    expect(got[0]?.payload).toEqual({ task_id: taskId });
    expect(got[0]?.receiveCount).toBe(1);
  });

  test("a received message is invisible until its visibility timeout, then back with receive_count 2; ack removes it", async () => {
    await clear();
    const id = await publish(db().sql, "task_wakeup", { task_id: randomUUID() });
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(1);
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    const again = await waitFor(
      async () => {
        const m = await receive(db().sql, "task_wakeup", opts);
        return m.length ? m : undefined;
      },
      { what: "redelivery after the visibility timeout", timeoutMs: 5000 },
    );
    expect(again[0]?.id).toBe(id);
    expect(again[0]?.receiveCount).toBe(2);
    expect(await ack(db().sql, id)).toBe(true);
    // Even past any visibility timeout it never comes back.
    await db().sql`UPDATE state.queue_messages SET available_at = now() - interval '1 hour'`;
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    const [row] = await db()
      .sql`SELECT count(*)::int AS n FROM state.queue_messages WHERE id = ${id}`;
    expect(row?.n).toBe(0);
  });

  test("extendVisibility keeps a message hidden past its original timeout", async () => {
    await clear();
    const id = await publish(db().sql, "task_wakeup", { task_id: randomUUID() });
    const [m] = await receive(db().sql, "task_wakeup", { ...opts, visibilityTimeoutMs: 200 });
    expect(m?.id).toBe(id);
    expect(await extendVisibility(db().sql, id, { visibilityTimeoutMs: 60_000 })).toBe(true);
    // The original 200 ms have certainly passed once the database clock says so.
    await waitFor(
      async () => {
        const [r] = await db()
          .sql`SELECT now() > created_at + interval '400 milliseconds' AS past FROM state.queue_messages WHERE id = ${id}`;
        return r?.past === true;
      },
      { what: "the original timeout to pass" },
    );
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    // An absolute time works too: back to visible now.
    const [now] = await db().sql`SELECT now() AS now`;
    expect(await extendVisibility(db().sql, id, new Date(String(now?.now)))).toBe(true);
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(1);
  });

  test("availableAt in the future hides a message until then", async () => {
    await clear();
    const [r] = await db().sql`SELECT now() + interval '400 milliseconds' AS at`;
    const at = r?.at;
    if (!(at instanceof Date)) throw new Error("no timestamp from the database");
    const id = await publish(
      db().sql,
      "task_wakeup",
      { task_id: randomUUID() },
      { availableAt: at },
    );
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    const got = await waitFor(
      async () => {
        const m = await receive(db().sql, "task_wakeup", opts);
        return m.length ? m : undefined;
      },
      { what: "the delayed message", timeoutMs: 5000 },
    );
    expect(got[0]?.id).toBe(id);
  });

  test("a message past MAX_RECEIVES lands in <queue>.dlq with its last error and is not delivered again", async () => {
    await clear();
    const id = await publish(db().sql, "task_wakeup", { task_id: randomUUID() });
    const tight = { max: 1, visibilityTimeoutMs: 1, maxReceives: 2 };
    for (let i = 1; i <= 2; i++) {
      const got = await waitFor(
        async () => {
          const m = await receive(db().sql, "task_wakeup", tight);
          return m.length ? m : undefined;
        },
        { what: `receive ${i}` },
      );
      expect(got[0]?.receiveCount).toBe(i);
      await recordError(db().sql, id, `handler failed on receive ${i}`);
    }
    await db()
      .sql`UPDATE state.queue_messages SET available_at = now() - interval '1 second' WHERE id = ${id}`;
    expect(await receive(db().sql, "task_wakeup", tight)).toHaveLength(0);
    const dead = await listDeadLetters(db().sql, ["task_wakeup"]);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.id).toBe(id);
    expect(dead[0]?.queue_name).toBe("task_wakeup.dlq");
    expect(dead[0]?.receive_count).toBe(2);
    expect(dead[0]?.last_error).toContain("handler failed on receive 2");
    await db().sql`UPDATE state.queue_messages SET available_at = now() - interval '1 hour'`;
    expect(await receive(db().sql, "task_wakeup", tight)).toHaveLength(0);
    const depth = (await depths(db().sql)).find((d) => d.queue === "task_wakeup");
    expect(depth).toEqual({ queue: "task_wakeup", ready: 0, inFlight: 0, delayed: 0, dead: 1 });
    // Redrive brings it back with a fresh count.
    expect(await redrive(db().sql, "task_wakeup", id)).toBe(1);
    const back = await receive(db().sql, "task_wakeup", tight);
    expect(back[0]?.id).toBe(id);
    expect(back[0]?.receiveCount).toBe(1);
  });

  test("deadLetter moves a message at once with the reason", async () => {
    await clear();
    const id = await publish(db().sql, "task_wakeup", { task_id: randomUUID() });
    expect(await deadLetter(db().sql, "task_wakeup", id, "poison: line 3")).toBe(true);
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    const dead = await listDeadLetters(db().sql);
    expect(dead.map((d) => [d.id, d.last_error])).toEqual([[id, "poison: line 3"]]);
  });

  test("payloads are checked against the queue's contract on publish and on receive", async () => {
    await clear();
    // @ts-expect-error — a wrong payload is refused at compile time and at run time
    await expect(publish(db().sql, "task_wakeup", { task: "x" })).rejects.toThrow(/contract/);
    await db()
      .sql`INSERT INTO state.queue_messages (queue_name, payload) VALUES ('task_wakeup', '{"nope":1}')`;
    expect(await receive(db().sql, "task_wakeup", opts)).toHaveLength(0);
    const dead = await listDeadLetters(db().sql, ["task_wakeup"]);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.last_error).toContain("contract");
  });

  test("two concurrent receivers over 1,000 messages never share one and together get all", async () => {
    await clear();
    const payloads = Array.from({ length: 1000 }, () => ({ task_id: randomUUID() }));
    const ids = await publishBatch(db().sql, "task_wakeup", payloads);
    expect(ids).toHaveLength(1000);
    // Two real connections, each its own pool of one, receiving in small batches with a
    // long visibility timeout: a message seen twice would mean SKIP LOCKED failed.
    const a = connect(db().url, { name: "receiver-a", max: 1 });
    const b = connect(db().url, { name: "receiver-b", max: 1 });
    try {
      const drain = async (sql: typeof a) => {
        const seen: string[] = [];
        for (;;) {
          const got = await receive(sql, "task_wakeup", {
            max: 7,
            visibilityTimeoutMs: 60_000,
            maxReceives: 5,
          });
          if (got.length === 0) return seen;
          seen.push(...got.map((m) => m.id));
        }
      };
      const [fromA, fromB] = await Promise.all([drain(a), drain(b)]);
      const all = [...fromA, ...fromB];
      expect(fromA.length).toBeGreaterThan(0);
      expect(fromB.length).toBeGreaterThan(0);
      expect(new Set(all).size).toBe(all.length);
      expect(new Set(all)).toEqual(new Set(ids));
    } finally {
      await a.end();
      await b.end();
    }
  });
});
