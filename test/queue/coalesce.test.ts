import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { Coalescer, type CoalescerOptions } from "../../src/coalesce";
import { PgQueue } from "../../src/queue/pg/backend";
import { messagesAckThenReceive, messagesReceive } from "../../src/queue/pg/sql";
import { useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";

/**
 * pgqueue merges a consumer's concurrent receives and acks into shared
 * statements (src/coalesce.ts): the invariants still hold per caller.
 */
const db = useFreshDatabase();
const opts = { visibilityTimeoutMs: 30_000, maxReceives: 5 };

async function seed(n: number): Promise<string[]> {
  await db().sql`DELETE FROM state.queue_messages`;
  const messages = Array.from({ length: n }, () => ({ payload: { task_id: randomUUID() } }));
  return db().queue().publisher().publish("task_wakeup", messages);
}

const consumer = () => db().queue().consumer("task_wakeup", opts);

describe("pgqueue under concurrent calls on one backend", () => {
  test("20 concurrent receives of max 1 get 20 distinct messages, one each", async () => {
    await seed(50);
    const c = await consumer();
    const got = await Promise.all(Array.from({ length: 20 }, () => c.receive(1)));
    for (const messages of got) expect(messages).toHaveLength(1);
    const ids = got.flat().map((m) => m.id);
    expect(new Set(ids).size).toBe(20);
    for (const m of got.flat()) expect(m.receiveCount).toBe(1);
  });

  test("merged receives never give a caller more than its max, and share nothing", async () => {
    await seed(4);
    const c = await consumer();
    const [a, b, d] = await Promise.all([c.receive(3), c.receive(2), c.receive(2)]);
    expect(a.length).toBeLessThanOrEqual(3);
    expect(b.length).toBeLessThanOrEqual(2);
    expect(d.length).toBeLessThanOrEqual(2);
    const ids = [...a, ...b, ...d].map((m) => m.id);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
  });

  test("two consumers of one queue on one backend share nothing either", async () => {
    await seed(10);
    const [x, y] = await Promise.all([consumer(), consumer()]);
    const got = await Promise.all([x.receive(6), y.receive(6), x.receive(6), y.receive(6)]);
    const ids = got.flat().map((m) => m.id);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
  });

  test("three concurrent acks of one message: exactly one finds it", async () => {
    await seed(1);
    const c = await consumer();
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    const results = await Promise.all([c.ack(m), c.ack(m), c.ack(m)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  test("concurrent ackBatch calls count only their own messages", async () => {
    await seed(6);
    const c = await consumer();
    const got = await c.receive(6);
    expect(got).toHaveLength(6);
    const counts = await Promise.all([
      c.ackBatch(got.slice(0, 3)),
      c.ackBatch(got.slice(2, 6)),
      c.ackBatch([]),
    ]);
    expect(counts[0] + counts[1]).toBe(6);
    expect(counts[2]).toBe(0);
    const [row] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
    expect(row?.n).toBe(0);
  });

  test("acks and receives waiting together share one statement, the acks first", async () => {
    await seed(3);
    // Visible again at once: a receive that ran before the ack would take it back.
    const c = await db()
      .queue()
      .consumer("task_wakeup", { ...opts, visibilityTimeoutMs: 0 });
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    const running = c.receive(1);
    const [acked, again] = await Promise.all([c.ack(m), c.receive(1)]);
    expect(acked).toBe(true);
    const ids = [...(await running), ...again].map((x) => x.id);
    expect(ids).not.toContain(m.id);
    expect(new Set(ids).size).toBe(2);
    // Both receives were one UPDATE: one transaction wrote both rows.
    const [tx] = await db().sql`
      SELECT count(DISTINCT xmin::text)::int AS n FROM state.queue_messages
      WHERE id = ANY(${ids}::bigint[])`;
    expect(tx?.n).toBe(1);
    const [row] = await db().sql`
      SELECT count(*)::int AS n FROM state.queue_messages WHERE id = ${m.id}::bigint`;
    expect(row?.n).toBe(0);
  });

  test("one statement acks, then receives: a message acked is not received by it", async () => {
    const [first, second] = await seed(2);
    if (first === undefined || second === undefined) throw new Error("nothing published");
    const params = { queue: "task_wakeup", visibilityTimeoutMs: 0, maxReceives: 5 };
    const taken = await messagesReceive(db().sql, { ...params, max: 2 });
    expect(taken.map((r) => r.id)).toEqual([first, second]);
    // Both visible again; acking `first` and receiving everything in one statement:
    const { acked, received } = await messagesAckThenReceive(db().sql, {
      ...params,
      ids: [first, "999999"],
      max: 10,
    });
    expect(acked).toEqual([first]);
    expect(received.map((r) => [r.id, r.receive_count])).toEqual([[second, 2]]);
  });

  test("with an ack linger, a lone ack waits for a receive and goes in its statement", async () => {
    await seed(3);
    const queue = PgQueue.open(db().url, { name: "test-linger", ackLingerMs: 60_000 });
    try {
      const c = await queue.consumer("task_wakeup", opts);
      const [m] = await c.receive(1);
      if (m === undefined) throw new Error("nothing received");
      // The receive's statement holds its place one turn after it ends (gather),
      // and a call waiting then runs when it gives it up: let it go first.
      await new Promise((resolve) => setImmediate(resolve));
      let acked: boolean | undefined;
      const ack = c.ack(m).then((ok) => {
        acked = ok;
      });
      const count = async () => {
        const [row] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
        return row?.n;
      };
      expect(await count()).toBe(3);
      expect(acked).toBeUndefined();
      expect(await c.receive(5)).toHaveLength(2);
      await ack;
      expect(acked).toBe(true);
      expect(await count()).toBe(2);
    } finally {
      await queue.close();
    }
  });
});

describe("Coalescer", () => {
  /** A coalescer whose statements wait for `release`, recording the inputs of each. */
  function gated(maxInFlight: number, maxWeight: number) {
    const runs: number[][] = [];
    const gates: Array<() => void> = [];
    const coalescer = new Coalescer<number, number>({
      run: async (inputs) => {
        runs.push(inputs);
        await new Promise<void>((resolve) => gates.push(resolve));
        return inputs.map((n) => n * 10);
      },
      weight: (n) => n,
      maxWeight,
      maxInFlight,
    });
    const release = () => {
      for (const open of gates.splice(0)) open();
    };
    /** Waits until `n` statements have started. */
    const started = (n: number) => waitFor(() => runs.length >= n, { what: `${n} statements` });
    return { coalescer, runs, release, started };
  }

  /** A coalescer whose statements answer each input with itself at once, recording the inputs of each. */
  function recorded(options: Omit<CoalescerOptions<number, number>, "run">) {
    const runs: number[][] = [];
    const coalescer = new Coalescer<number, number>({
      ...options,
      run: async (inputs) => {
        runs.push(inputs);
        return inputs;
      },
    });
    return { coalescer, runs };
  }

  test("a lone call runs at once; calls made while the limit is busy merge into one", async () => {
    const { coalescer, runs, release, started } = gated(2, 100);
    const outs = Array.from({ length: 6 }, (_, i) => coalescer.submit(i + 1));
    expect(runs).toEqual([[1], [2]]);
    release();
    expect(await Promise.all(outs.slice(0, 2))).toEqual([10, 20]);
    await started(3);
    expect(runs).toEqual([[1], [2], [3, 4, 5, 6]]);
    release();
    expect(await Promise.all(outs)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  test("a merged statement stays within maxWeight, but always takes one input", async () => {
    const { coalescer, runs, release, started } = gated(1, 5);
    const outs = [
      coalescer.submit(1),
      coalescer.submit(3),
      coalescer.submit(2),
      coalescer.submit(9),
    ];
    for (const n of [2, 3]) {
      release();
      await started(n);
    }
    release();
    expect(await Promise.all(outs)).toEqual([10, 30, 20, 90]);
    expect(runs).toEqual([[1], [3, 2], [9]]);
  });

  test("with a linger, calls one at a time within it share one statement; maxWeight cuts it short", async () => {
    const { coalescer, runs } = recorded({
      weight: () => 1,
      maxWeight: 3,
      maxInFlight: 2,
      lingerMs: 10_000,
    });
    const first = [coalescer.submit(1)];
    await Promise.resolve();
    first.push(coalescer.submit(2));
    expect(runs).toEqual([]);
    // The third call reaches maxWeight: all three run now, not after the linger.
    first.push(coalescer.submit(3));
    expect(await Promise.all(first)).toEqual([1, 2, 3]);
    expect(runs).toEqual([[1, 2, 3]]);
  });

  test("a lingering call runs once its linger is over", async () => {
    const { coalescer, runs } = recorded({
      weight: () => 1,
      maxWeight: 100,
      maxInFlight: 1,
      lingerMs: 20,
    });
    const started = performance.now();
    const outs = [coalescer.submit(1), coalescer.submit(2)];
    expect(runs).toEqual([]);
    expect(await Promise.all(outs)).toEqual([1, 2]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    expect(runs).toEqual([[1, 2]]);
  });

  test("a call that may not linger runs at once, taking the lingering ones along", async () => {
    const { coalescer, runs } = recorded({
      weight: () => 1,
      maxWeight: 100,
      maxInFlight: 1,
      lingerMs: 60_000,
      lingers: (n) => n < 0,
    });
    const lingering = [coalescer.submit(-1), coalescer.submit(-2)];
    await Promise.resolve();
    expect(runs).toEqual([]);
    expect(await coalescer.submit(3)).toBe(3);
    expect(await Promise.all(lingering)).toEqual([-1, -2]);
    expect(runs).toEqual([[-1, -2, 3]]);
  });

  test("with gather, the calls its callers make on their answers share the next statement", async () => {
    const runs = (gather: boolean) => {
      const seen: number[][] = [];
      const coalescer = new Coalescer<number, number>({
        run: async (inputs) => {
          seen.push(inputs);
          await Bun.sleep(1);
          return inputs;
        },
        weight: () => 1,
        maxWeight: 100,
        maxInFlight: 1,
        gather,
      });
      /** A caller's own work on an answer before its next call: some turns of the microtask queue. */
      const answered = async (n: number) => {
        for (let i = 0; i < 10; i++) await Promise.resolve();
        return n + 10;
      };
      const lone = coalescer.submit(0);
      // Three callers that meet in one statement, then each call again on
      // its answer, as a consumer's slots ack what they received.
      const callers = [1, 2, 3].map(async (n) =>
        coalescer.submit(await answered(await coalescer.submit(n))),
      );
      return Promise.all([lone, ...callers]).then(() => seen);
    };
    expect(await runs(true)).toEqual([[0], [1, 2, 3], [11, 12, 13]]);
    // Without it, the first follow-up call finds the place free and runs alone.
    expect(await runs(false)).toEqual([[0], [1, 2, 3], [11], [12, 13]]);
  });

  test("a second statement starts while one runs only when a full one is waiting", async () => {
    const runs: number[][] = [];
    const gates: Array<() => void> = [];
    const coalescer = new Coalescer<number, number>({
      run: async (inputs) => {
        runs.push(inputs);
        await new Promise<void>((resolve) => gates.push(resolve));
        return inputs;
      },
      weight: (n) => n,
      maxWeight: 10,
      maxInFlight: 1,
      maxInFlightWhenFull: 2,
    });
    const outs = [coalescer.submit(1), coalescer.submit(4), coalescer.submit(5)];
    expect(runs).toEqual([[1]]);
    outs.push(coalescer.submit(6));
    // 4 + 5 + 6 waiting: a full statement (4 + 5) starts beside the first; 6 waits.
    expect(runs).toEqual([[1], [4, 5]]);
    for (const n of [3, 3]) {
      for (const open of gates.splice(0)) open();
      await waitFor(() => runs.length >= n, { what: `${n} statements` });
    }
    for (const open of gates.splice(0)) open();
    expect(await Promise.all(outs)).toEqual([1, 4, 5, 6]);
    expect(runs).toEqual([[1], [4, 5], [6]]);
  });

  test("a failed statement fails every call merged into it, and only those", async () => {
    let calls = 0;
    const coalescer = new Coalescer<number, number>({
      run: async (inputs) => {
        calls++;
        if (inputs.includes(13)) throw new Error("unlucky");
        return inputs;
      },
      weight: () => 1,
      maxWeight: 10,
      maxInFlight: 1,
    });
    const results = await Promise.allSettled([
      coalescer.submit(1),
      coalescer.submit(13),
      coalescer.submit(2),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    expect(calls).toBe(2);
    expect(await coalescer.submit(3)).toBe(3);
  });
});
