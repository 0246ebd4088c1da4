import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { BufferMessage, QueueName } from "../../src/contracts/queue";
import type {
  ConsumerOptions,
  Message,
  Outgoing,
  QueueBackend,
  QueueConsumer,
} from "../../src/queue/seam";
import { waitFor } from "../support/wait";

/**
 * The queue seam's shared adapter suite (River's `riverdrivertest`): every
 * backend runs it, so each keeps invariant 1 the same way. A backend's test
 * file calls `queueAdapterSuite` with a fixture. Visibility timeouts are short
 * and every "later" is a wait on a condition, never a sleep.
 */

export interface AdapterFixture {
  /** A new client of the backend under test, on the same queues (another process, in effect). */
  open(): Promise<QueueBackend>;
  /** Removes every message and dead letter of every queue. */
  clear(): Promise<void>;
  /** Stores a message as a buggy or hostile publisher would: no contract check on the way in. */
  publishRaw(queue: QueueName, payload: unknown): Promise<void>;
}

/** Hidden long enough that no test outlives it. */
const LONG: ConsumerOptions = { visibilityTimeoutMs: 60_000, maxReceives: 5 };
/** Short, but long enough that an immediate second look still finds the message hidden. */
const SHORT: ConsumerOptions = { visibilityTimeoutMs: 1_000, maxReceives: 5 };
const REAPPEAR_MS = 15_000;

const wakeup = () => ({ payload: { task_id: randomUUID() } });

function bufferMessage(): BufferMessage {
  return {
    task_id: randomUUID(),
    org_id: "acme",
    attempt: 1,
    batch_uri: "file:///tmp/acme/x/1-a.jsonl",
    content_type: "application/x-ndjson",
    batch_size_bytes: 10,
  };
}

/** The next receive that returns anything, within the deadline. */
async function next<Q extends QueueName>(
  c: QueueConsumer<Q>,
  what: string,
  max = 10,
): Promise<Message<Q>[]> {
  return waitFor(
    async () => {
      const got = await c.receive(max);
      return got.length > 0 ? got : undefined;
    },
    { what, timeoutMs: REAPPEAR_MS },
  );
}

export function queueAdapterSuite(name: string, makeFixture: () => Promise<AdapterFixture>) {
  let fixture: AdapterFixture;
  let backend: QueueBackend;
  const opened: QueueBackend[] = [];
  const another = async () => {
    const b = await fixture.open();
    opened.push(b);
    return b;
  };
  const publish = <Q extends QueueName>(queue: Q, messages: Outgoing<Q>[]) =>
    backend.publisher().publish(queue, messages);

  beforeAll(async () => {
    fixture = await makeFixture();
    backend = await another();
  });
  afterAll(async () => {
    await Promise.all(opened.map((b) => b.close()));
  });
  beforeEach(async () => {
    await fixture.clear();
  });

  describe(`queue adapter: ${name}`, () => {
    test("publish returns ids that receive reports, with payload and a first receive count", async () => {
      const sent = [wakeup(), wakeup(), wakeup()];
      const ids = await publish("task_wakeup", sent);
      expect(ids).toHaveLength(3);
      expect(new Set(ids).size).toBe(3);
      const c = await backend.consumer("task_wakeup", LONG);
      const got = await c.receive(10);
      expect(new Set(got.map((m) => m.id))).toEqual(new Set(ids));
      const byId = new Map(got.map((m) => [m.id, m]));
      ids.forEach((id, i) => {
        const m = byId.get(id);
        expect(m?.payload).toEqual(sent[i]?.payload);
        expect(m).toMatchObject({ queue: "task_wakeup", receiveCount: 1, lastError: null });
        expect(m?.createdAt).toBeInstanceOf(Date);
      });
    });

    test("receive takes at most max, and each message from one queue only", async () => {
      await publish("task_wakeup", [wakeup(), wakeup(), wakeup()]);
      const c = await backend.consumer("task_wakeup", LONG);
      expect(await c.receive(2)).toHaveLength(2);
      expect(await (await backend.consumer("buffer_queue", LONG)).receive(10)).toEqual([]);
      expect(await c.receive(10)).toHaveLength(1);
      expect(await c.receive(10)).toEqual([]);
    });

    test("a received message is hidden from every other receiver, then reappears with receive_count + 1", async () => {
      const [id] = await publish("task_wakeup", [wakeup()]);
      const a = await backend.consumer("task_wakeup", SHORT);
      const b = await (await another()).consumer("task_wakeup", SHORT);
      const [first] = await a.receive(10);
      expect(first?.id).toBe(id);
      expect(await b.receive(10)).toEqual([]);
      expect(await a.receive(10)).toEqual([]);
      const [again] = await next(b, "the unacked message to reappear");
      expect(again).toMatchObject({ id, receiveCount: 2, payload: first?.payload });
    });

    test("an acked message never reappears", async () => {
      const ids = await publish("task_wakeup", [wakeup(), wakeup()]);
      const [acked] = ids;
      const c = await backend.consumer("task_wakeup", SHORT);
      const got = await c.receive(10);
      const toAck = got.find((m) => m.id === acked);
      if (toAck === undefined) throw new Error("the message to ack was not received");
      expect(await c.ack(toAck)).toBe(true);
      // The other one, received at the same time, reappearing means the timeout has passed.
      const back = await next(c, "the unacked message to reappear");
      expect(back.map((m) => m.id)).toEqual(ids.slice(1));
      expect(await c.receive(10)).toEqual([]);
      expect(await c.ack(toAck)).toBe(false);
    });

    test("ackBatch acks many and counts only those still there", async () => {
      await publish("task_wakeup", [wakeup(), wakeup(), wakeup()]);
      const c = await backend.consumer("task_wakeup", LONG);
      const got = await c.receive(10);
      expect(await c.ackBatch(got.slice(0, 1))).toBe(1);
      expect(await c.ackBatch(got)).toBe(2);
      expect(await c.ackBatch([])).toBe(0);
      expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 0 });
    });

    test("extendVisibility keeps a message hidden past its timeout, and can show it again at once", async () => {
      const ids = await publish("task_wakeup", [wakeup(), wakeup()]);
      const [extended] = ids;
      const c = await backend.consumer("task_wakeup", SHORT);
      const got = await c.receive(10);
      const m = got.find((x) => x.id === extended);
      if (m === undefined) throw new Error("the message to extend was not received");
      expect(await c.extendVisibility(m, { visibilityTimeoutMs: 60_000 })).toBe(true);
      const back = await next(c, "the message that was not extended to reappear");
      expect(back.map((x) => x.id)).toEqual(ids.slice(1));
      expect(await c.receive(10)).toEqual([]);
      expect(await c.extendVisibility(m, { visibilityTimeoutMs: 0 })).toBe(true);
      const [shown] = await next(c, "the extended message, shown again");
      if (shown === undefined) throw new Error("nothing received");
      expect(shown).toMatchObject({ id: extended, receiveCount: 2 });
      // An absolute time works too; a message acked meanwhile is gone.
      expect(await c.extendVisibility(shown, new Date(Date.now() + 60_000))).toBe(true);
      expect(await c.receive(10)).toEqual([]);
      expect(await c.ack(shown)).toBe(true);
      expect(await c.extendVisibility(shown, { visibilityTimeoutMs: 0 })).toBe(false);
    });

    test("recordError leaves the message to come back with the error", async () => {
      const [id] = await publish("task_wakeup", [wakeup()]);
      const c = await backend.consumer("task_wakeup", SHORT);
      const [m] = await c.receive(10);
      if (m === undefined) throw new Error("nothing received");
      await c.recordError(m, "handler failed: boom");
      const [back] = await next(c, "the failed message to reappear");
      expect(back).toMatchObject({ id, receiveCount: 2, lastError: "handler failed: boom" });
    });

    test("a message received more than max receives goes to <queue>.dlq with its last error", async () => {
      const [id] = await publish("task_wakeup", [wakeup()]);
      const c = await backend.consumer("task_wakeup", { visibilityTimeoutMs: 200, maxReceives: 2 });
      for (let i = 1; i <= 2; i++) {
        const [m] = await next(c, `receive ${i}`);
        expect(m).toMatchObject({ id, receiveCount: i });
        if (m !== undefined) await c.recordError(m, `failed on receive ${i}`);
      }
      const admin = backend.admin();
      const [dead] = await waitFor(
        async () => {
          expect(await c.receive(10)).toEqual([]);
          const letters = await admin.listDeadLetters({ queues: ["task_wakeup"] });
          return letters.length > 0 ? letters : undefined;
        },
        { what: "the message in task_wakeup.dlq", timeoutMs: REAPPEAR_MS },
      );
      expect(dead).toMatchObject({ id, queue: "task_wakeup", receiveCount: 2 });
      expect(dead?.lastError).toContain("failed on receive 2");
      expect(await c.receive(10)).toEqual([]);
      const depth = (await admin.depths()).find((d) => d.queue === "task_wakeup");
      expect(depth).toEqual({ queue: "task_wakeup", ready: 0, inFlight: 0, delayed: 0, dead: 1 });
    });

    test("deadLetter moves a message to <queue>.dlq at once, with the reason", async () => {
      const ids = await publish("task_wakeup", [wakeup()]);
      const c = await backend.consumer("task_wakeup", LONG);
      const [m] = await c.receive(10);
      if (m === undefined) throw new Error("nothing received");
      expect(await c.deadLetter(m, "poison: line 3")).toBe(true);
      expect(await c.deadLetter(m, "again")).toBe(false);
      const letters = await backend.admin().listDeadLetters({});
      expect(letters.map((d) => [d.id, d.queue, d.lastError])).toEqual([
        [ids[0] ?? "", "task_wakeup", "poison: line 3"],
      ]);
      expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 0 });
    });

    test("publish with availableAt: delayed until then, then ready", async () => {
      const [id] = await publish("task_wakeup", [
        { ...wakeup(), availableAt: new Date(Date.now() + 1_500) },
      ]);
      const c = await backend.consumer("task_wakeup", LONG);
      expect(await c.receive(10)).toEqual([]);
      expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 1 });
      const [m] = await next(c, "the delayed message");
      expect(m).toMatchObject({ id, receiveCount: 1 });
    });

    test("depths count ready, in flight, delayed and dead per queue", async () => {
      await publish("task_wakeup", [wakeup(), wakeup(), wakeup()]);
      await publish("task_wakeup", [{ ...wakeup(), availableAt: new Date(Date.now() + 60_000) }]);
      await publish("buffer_queue", [{ payload: bufferMessage() }]);
      const c = await backend.consumer("task_wakeup", LONG);
      const [m] = await c.receive(2);
      if (m === undefined) throw new Error("nothing received");
      expect(await c.deadLetter(m, "poison")).toBe(true);
      const depths = await backend.admin().depths();
      expect(depths).toEqual([
        { queue: "task_wakeup", ready: 1, inFlight: 1, delayed: 1, dead: 1 },
        { queue: "buffer_queue", ready: 1, inFlight: 0, delayed: 0, dead: 0 },
        { queue: "task_completed", ready: 0, inFlight: 0, delayed: 0, dead: 0 },
      ]);
      expect(await c.depth()).toEqual({ ready: 1, inFlight: 1, delayed: 1 });
    });

    test("listDeadLetters filters by queue; redrive moves one or all back with a fresh count", async () => {
      const wakeups = await backend.consumer("task_wakeup", LONG);
      const buffers = await backend.consumer("buffer_queue", LONG);
      const sentWakeups = [wakeup(), wakeup()];
      const sentBuffer = { payload: bufferMessage() };
      await publish("task_wakeup", sentWakeups);
      await publish("buffer_queue", [sentBuffer]);
      for (const m of await wakeups.receive(10)) await wakeups.deadLetter(m, "bad wakeup");
      for (const m of await buffers.receive(10)) await buffers.deadLetter(m, "bad batch");
      const admin = backend.admin();
      expect(await admin.listDeadLetters({})).toHaveLength(3);
      const onlyBuffer = await admin.listDeadLetters({ queues: ["buffer_queue"] });
      expect(onlyBuffer.map((d) => [d.queue, d.payload, d.lastError])).toEqual([
        ["buffer_queue", sentBuffer.payload, "bad batch"],
      ]);
      expect(await admin.listDeadLetters({ limit: 1 })).toHaveLength(1);

      const [one] = await admin.listDeadLetters({ queues: ["task_wakeup"] });
      if (one === undefined) throw new Error("no dead wakeup");
      expect(await admin.redrive({ queue: "task_wakeup", id: one.id })).toBe(1);
      expect(await admin.redrive({ queue: "task_wakeup", id: one.id })).toBe(0);
      const [back] = await next(wakeups, "the redriven wakeup");
      expect(back).toMatchObject({ payload: one.payload, receiveCount: 1 });
      expect(await admin.listDeadLetters({ queues: ["task_wakeup"] })).toHaveLength(1);

      expect(await admin.redrive({ queue: "buffer_queue" })).toBe(1);
      const [batch] = await next(buffers, "the redriven buffer message");
      expect(batch).toMatchObject({ payload: sentBuffer.payload, receiveCount: 1 });
      expect(await admin.listDeadLetters({ queues: ["buffer_queue"] })).toEqual([]);
    });

    test("a payload that breaks its contract: refused on publish, dead-lettered on receive", async () => {
      const publisher = backend.publisher();
      // @ts-expect-error — a wrong payload is refused at compile time and at run time
      await expect(publisher.publish("task_wakeup", [{ payload: { task: "x" } }])).rejects.toThrow(
        /contract/,
      );
      // One bad message fails the whole call: nothing of it is published.
      const mixed = [wakeup(), { payload: { task_id: "not-a-uuid" } }];
      await expect(publisher.publish("task_wakeup", mixed)).rejects.toThrow(/contract/);
      const c = await backend.consumer("task_wakeup", LONG);
      expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 0 });

      await fixture.publishRaw("task_wakeup", { nope: 1 });
      const good = await publish("task_wakeup", [wakeup()]);
      const got = await waitFor(
        async () => {
          const received = await c.receive(10);
          const dead = await backend.admin().listDeadLetters({});
          return dead.length > 0 ? { received, dead } : undefined;
        },
        { what: "the bad payload in task_wakeup.dlq", timeoutMs: REAPPEAR_MS },
      );
      expect(got.received.map((m) => m.id)).toEqual(good);
      expect(got.dead.map((d) => [d.queue, d.payload])).toEqual([["task_wakeup", { nope: 1 }]]);
      expect(got.dead[0]?.lastError).toContain("contract");
      expect(await c.receive(10)).toEqual([]);
    });

    test("concurrent receivers on two clients never get the same message, and together get all", async () => {
      const ids = await publish(
        "task_wakeup",
        Array.from({ length: 500 }, () => wakeup()),
      );
      const drain = async (c: QueueConsumer<"task_wakeup">, seen: string[]) => {
        for (;;) {
          const got = await c.receive(7);
          if (got.length === 0) return seen;
          seen.push(...got.map((m) => m.id));
        }
      };
      const a = await backend.consumer("task_wakeup", LONG);
      const b = await (await another()).consumer("task_wakeup", LONG);
      // One message each first, so both clients are connected when the race starts: a
      // client still connecting on a loaded machine found the queue already drained.
      const first = await Promise.all([a.receive(1), b.receive(1)]);
      const each = [a, b].map((c, i) =>
        drain(
          c,
          (first[i] ?? []).map((m) => m.id),
        ),
      );
      const all = (await Promise.all(each)).flat();
      expect(all).toHaveLength(ids.length);
      expect(new Set(all)).toEqual(new Set(ids));
    }, 30_000);

    test("wait resolves on a publish to its queue, on abort, and when the backend closes", async () => {
      const c = await backend.consumer("task_wakeup", LONG);
      const woken = c.wait(60_000);
      await publish("task_wakeup", [wakeup()]);
      await woken;
      const stop = new AbortController();
      const stopped = c.wait(60_000, stop.signal);
      stop.abort();
      await stopped;
      await c.wait(60_000, stop.signal);
      const closing = await fixture.open();
      const waiting = (await closing.consumer("task_wakeup", LONG)).wait(60_000);
      await closing.close();
      await waiting;
    }, 10_000);
  });
}
