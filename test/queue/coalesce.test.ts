import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { ack, ackBatch, publishBatch, receive } from "../../src/queue";
import { useFreshDatabase } from "../support/db";

/** Concurrent calls on one handle are merged (src/queue/coalesce.ts): the invariants still hold per caller. */
const db = useFreshDatabase();
const opts = { visibilityTimeoutMs: 30_000, maxReceives: 5 };

async function seed(n: number): Promise<string[]> {
  await db().sql`DELETE FROM state.queue_messages`;
  const payloads = Array.from({ length: n }, () => ({ task_id: randomUUID() }));
  return publishBatch(db().sql, "task_wakeup", payloads);
}

describe("pgqueue under concurrent calls on one handle", () => {
  test("20 concurrent receives of max 1 get 20 distinct messages, one each", async () => {
    await seed(50);
    const got = await Promise.all(
      Array.from({ length: 20 }, () => receive(db().sql, "task_wakeup", { ...opts, max: 1 })),
    );
    for (const messages of got) expect(messages).toHaveLength(1);
    const ids = got.flat().map((m) => m.id);
    expect(new Set(ids).size).toBe(20);
    for (const m of got.flat()) expect(m.receiveCount).toBe(1);
  });

  test("merged receives never give a caller more than its max, and share nothing", async () => {
    await seed(4);
    const [a, b, c] = await Promise.all([
      receive(db().sql, "task_wakeup", { ...opts, max: 3 }),
      receive(db().sql, "task_wakeup", { ...opts, max: 2 }),
      receive(db().sql, "task_wakeup", { ...opts, max: 2 }),
    ]);
    expect(a.length).toBeLessThanOrEqual(3);
    expect(b.length).toBeLessThanOrEqual(2);
    expect(c.length).toBeLessThanOrEqual(2);
    const ids = [...a, ...b, ...c].map((m) => m.id);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
  });

  test("two concurrent acks of one message: exactly one finds it", async () => {
    const [id] = await seed(1);
    if (id === undefined) throw new Error("no id");
    const results = await Promise.all([ack(db().sql, id), ack(db().sql, id), ack(db().sql, id)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  test("concurrent ackBatch calls count only their own ids", async () => {
    const ids = await seed(6);
    const counts = await Promise.all([
      ackBatch(db().sql, ids.slice(0, 3)),
      ackBatch(db().sql, ids.slice(2, 6)),
      ackBatch(db().sql, []),
    ]);
    expect(counts[0] + counts[1]).toBe(6);
    expect(counts[2]).toBe(0);
    const [row] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
    expect(row?.n).toBe(0);
  });
});
