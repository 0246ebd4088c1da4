import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { connect } from "../../src/db/connect";
import { useFreshDatabase } from "../support/db";

/**
 * pgqueue publishes inside the caller's transaction (the outbox drainer's
 * need): its messages exist, and wake listeners, only once it commits.
 *
 * Every fencing check runs in `sql.begin`. With more concurrent callers than
 * pool connections, each transaction must still run whole and commit — this
 * failed (UNSAFE_TRANSACTION) with postgres.js `max_pipeline: 1`.
 */

const db = useFreshDatabase();

describe("connection pool", () => {
  test("8 callers on a pool of 4: every transaction commits, none refused", async () => {
    const sql = connect(db().url, { name: "test-pool", max: 4 });
    try {
      await sql`CREATE TABLE IF NOT EXISTS pool_probe (id serial PRIMARY KEY, caller int)`;
      const failures: string[] = [];
      let committed = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, caller) => {
          for (let i = 0; i < 100; i++) {
            try {
              if (i % 2 === 0) {
                await sql.begin(async (tx) => {
                  await tx`INSERT INTO pool_probe (caller) VALUES (${caller})`;
                  await tx`SELECT 1`;
                });
                committed++;
              } else await sql`SELECT 1`;
            } catch (err) {
              failures.push(String(err));
            }
          }
        }),
      );
      expect(failures.slice(0, 3)).toEqual([]);
      const [row] = await sql`SELECT count(*)::int AS n FROM pool_probe`;
      expect(row?.n).toBe(committed);
      expect(committed).toBe(400);
    } finally {
      await sql.end();
    }
  });
});

describe("publishing inside a transaction", () => {
  const opts = { visibilityTimeoutMs: 60_000, maxReceives: 5 };

  test("a message published in a transaction is received only after commit, and wakes waiters then", async () => {
    await db().sql`DELETE FROM state.queue_messages`;
    const queue = db().queue();
    const c = await queue.consumer("task_wakeup", opts);
    let woken = false;
    const waiting = c.wait(60_000).then(() => {
      woken = true;
    });
    const payload = { task_id: randomUUID() };
    const pool = connect(db().url, { name: "test-tx", max: 1 });
    try {
      let published: string[] = [];
      await pool.begin(async (tx) => {
        published = await queue.publisher(tx).publish("task_wakeup", [{ payload }]);
        expect(await c.receive(10)).toEqual([]);
        expect(woken).toBe(false);
      });
      await waiting;
      const got = await c.receive(10);
      expect(got.map((m) => [m.id, m.payload])).toEqual([[published[0] ?? "", payload]]);
    } finally {
      await pool.end();
    }
  });

  test("a rolled back transaction publishes nothing", async () => {
    await db().sql`DELETE FROM state.queue_messages`;
    const queue = db().queue();
    const pool = connect(db().url, { name: "test-tx", max: 1 });
    try {
      const rolledBack = pool.begin(async (tx) => {
        await queue.publisher(tx).publish("task_wakeup", [{ payload: { task_id: randomUUID() } }]);
        throw new Error("the caller's other write failed");
      });
      await expect(rolledBack).rejects.toThrow("other write failed");
      const c = await queue.consumer("task_wakeup", opts);
      expect(await c.receive(10)).toEqual([]);
      expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 0 });
    } finally {
      await pool.end();
    }
  });
});
