import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { QueueName } from "../../src/contracts/queue";
import type { NatsConsumer } from "../../src/queue/nats/consumer";
import type { ConsumerOptions, Message } from "../../src/queue/seam";
import { ENSURED_VISIBILITY_MS, TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { waitFor } from "../support/wait";

/**
 * NatsQueue against the shared NATS, on a namespace of this file's own:
 * invariant 1 and every call of the seam. Written with seam calls only, so
 * the cases fold into the shared adapter suite.
 */

const nats = useNatsQueue("nats");
const opts: ConsumerOptions = { visibilityTimeoutMs: 1_000, maxReceives: 5 };

const wakeup = () => ({ task_id: randomUUID() });

async function publish(
  payloads: Array<{ task_id: string }>,
  o: { availableAt?: Date; dedupeId?: string } = {},
) {
  return nats()
    .queue.publisher()
    .publish(
      "task_wakeup",
      payloads.map((payload) => ({ payload, ...o })),
    );
}

async function consumer(o: ConsumerOptions = opts) {
  return nats().queue.consumer("task_wakeup", o);
}

/** Receives until something comes (a redelivery after a timeout, a delayed message). */
async function receiveSome<Q extends QueueName>(
  c: NatsConsumer<Q>,
  what: string,
  timeoutMs = 10_000,
): Promise<Message<Q>[]> {
  return waitFor(
    async () => {
      const got = await c.receive(10);
      return got.length > 0 ? got : undefined;
    },
    { what, timeoutMs },
  );
}

/** Lets `ms` pass (a negative check: nothing may happen meanwhile), measured from now. */
async function letPass(ms: number) {
  const until = Date.now() + ms;
  await waitFor(() => Date.now() >= until, { what: `${ms} ms to pass`, timeoutMs: ms + 5_000 });
}

/** Empties every queue and dead letter, so each test starts from nothing. */
async function clear() {
  await nats().queue.purge();
}

describe("NatsQueue", () => {
  test("publish then receive: the payload, receive count 1, the id publish returned", async () => {
    await clear();
    const payload = wakeup();
    const [id] = await publish([payload]);
    const c = await consumer();
    const [m, ...rest] = await c.receive(10);
    expect(rest).toHaveLength(0);
    expect(m?.id).toBe(id);
    expect(m?.payload).toEqual(payload);
    expect(m?.receiveCount).toBe(1);
    expect(m?.lastError).toBeNull();
    expect(Math.abs((m?.createdAt.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
  });

  test("a received message is hidden from every receiver until its visibility timeout, then back with receive count 2; acked, it never comes back", async () => {
    await clear();
    const [id] = await publish([wakeup()]);
    const a = await consumer();
    const other = await (await nats().open("other")).consumer("task_wakeup", opts);
    const [first] = await a.receive(10);
    expect(first?.id).toBe(id);
    expect(await a.receive(10)).toHaveLength(0);
    expect(await other.receive(10)).toHaveLength(0);
    const [again] = await receiveSome(other, "the redelivery after the visibility timeout");
    expect(again?.id).toBe(id);
    expect(again?.receiveCount).toBe(2);
    if (again === undefined) throw new Error("no redelivery");
    expect(await other.ack(again)).toBe(true);
    expect(await other.ack(again)).toBe(false);
    // Longer than a visibility timeout: nothing comes back.
    await letPass(opts.visibilityTimeoutMs * 2);
    expect(await a.receive(10)).toHaveLength(0);
    expect(await a.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 0 });
  });

  test("a stale receiver's ack after the redelivery was acked says false", async () => {
    await clear();
    await publish([wakeup()]);
    const c = await consumer();
    const [stale] = await c.receive(1);
    const [fresh] = await receiveSome(c, "the redelivery");
    if (stale === undefined || fresh === undefined) throw new Error("nothing received");
    expect(await c.ack(fresh)).toBe(true);
    expect(await c.ack(stale)).toBe(false);
  });

  test("each of many messages goes to exactly one of several concurrent receivers", async () => {
    await clear();
    const ids = await publish(Array.from({ length: 200 }, wakeup));
    const receivers = await Promise.all([
      consumer(),
      consumer(),
      (await nats().open("r3")).consumer("task_wakeup", opts),
    ]);
    const seen: string[] = [];
    await Promise.all(
      receivers.map(async (c) => {
        for (;;) {
          const got = await c.receive(7);
          if (got.length === 0) return;
          for (const m of got) seen.push(m.id);
          expect(await c.ackBatch(got)).toBe(got.length);
        }
      }),
    );
    expect(seen.sort()).toEqual([...ids].sort());
  });

  test("extendVisibility keeps a message hidden past its timeout; an absolute time in the past shows it at once; false once acked", async () => {
    await clear();
    await publish([wakeup()]);
    const c = await consumer();
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    expect(await c.extendVisibility(m, { visibilityTimeoutMs: 60_000 })).toBe(true);
    await letPass(opts.visibilityTimeoutMs * 2);
    expect(await c.receive(1)).toHaveLength(0);
    expect(await c.extendVisibility(m, new Date(Date.now() + 60_000))).toBe(true);
    expect(await c.receive(1)).toHaveLength(0);
    expect(await c.extendVisibility(m, new Date(Date.now() - 1_000))).toBe(true);
    const [back] = await receiveSome(c, "the message made visible again");
    expect(back?.id).toBe(m.id);
    expect(back?.receiveCount).toBe(2);
    if (back === undefined) throw new Error("not back");
    expect(await c.ack(back)).toBe(true);
    expect(await c.extendVisibility(back, { visibilityTimeoutMs: 60_000 })).toBe(false);
  });

  test("an absolute extension is honoured: hidden until then, back soon after", async () => {
    await clear();
    await publish([wakeup()]);
    const c = await consumer();
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    const until = Date.now() + 1_500;
    expect(await c.extendVisibility(m, new Date(until))).toBe(true);
    const [back] = await receiveSome(c, "the message after its extension");
    expect(Date.now()).toBeGreaterThanOrEqual(until - 50);
    expect(back?.id).toBe(m.id);
  });

  test("the consumer's own ack wait is the visibility when the options ask for it", async () => {
    await clear();
    const c = await consumer({ visibilityTimeoutMs: ENSURED_VISIBILITY_MS, maxReceives: 5 });
    await publish([wakeup()]);
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    await letPass(opts.visibilityTimeoutMs * 2);
    expect(await c.receive(1)).toHaveLength(0);
    expect(await c.depth()).toEqual({ ready: 0, inFlight: 1, delayed: 0 });
    expect(await c.ack(m)).toBe(true);
  });

  test("recordError keeps the last error for the next receive, in another process too", async () => {
    await clear();
    await publish([wakeup()]);
    const c = await consumer();
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    await c.recordError(m, "first failure");
    await c.recordError(m, "second failure\nwith a second line");
    const elsewhere = await (await nats().open("restarted")).consumer("task_wakeup", opts);
    const [back] = await receiveSome(elsewhere, "the redelivery after an error");
    expect(back?.id).toBe(m.id);
    expect(back?.lastError).toBe("second failure\nwith a second line");
    expect(back?.receiveCount).toBe(2);
    if (back === undefined) throw new Error("not back");
    expect(await elsewhere.ack(back)).toBe(true);
  });

  test("past maxReceives a message goes to the dead letters with its last error, and redrive brings it back with a fresh count", async () => {
    await clear();
    const [id] = await publish([wakeup()]);
    const c = await consumer({ visibilityTimeoutMs: 100, maxReceives: 2 });
    for (let i = 1; i <= 2; i++) {
      const [m] = await receiveSome(c, `receive ${i}`);
      expect(m?.receiveCount).toBe(i);
      if (m !== undefined) await c.recordError(m, `failure ${i}`);
    }
    const admin = nats().queue.admin();
    const letters = await waitFor(
      async () => {
        await c.receive(10);
        const l = await admin.listDeadLetters({ queues: ["task_wakeup"] });
        return l.length > 0 ? l : undefined;
      },
      { what: "the dead letter" },
    );
    expect(letters).toHaveLength(1);
    expect(letters[0]?.id).toBe(id);
    expect(letters[0]?.lastError).toBe("failure 2 (dead-lettered after 2 receives)");
    expect(letters[0]?.receiveCount).toBe(2);
    const depth = (await admin.depths()).find((d) => d.queue === "task_wakeup");
    expect(depth).toEqual({ queue: "task_wakeup", ready: 0, inFlight: 0, delayed: 0, dead: 1 });

    expect(await admin.redrive({ queue: "task_wakeup", id: "999999" })).toBe(0);
    expect(await admin.redrive({ queue: "task_wakeup", id })).toBe(1);
    expect(await admin.listDeadLetters({})).toHaveLength(0);
    const [back] = await c.receive(10);
    expect(back?.id).toBe(id);
    expect(back?.receiveCount).toBe(1);
    expect(back?.lastError).toBe("failure 2 (dead-lettered after 2 receives)");
    if (back !== undefined) expect(await c.ack(back)).toBe(true);
  });

  test("deadLetter moves a message at once with the reason; a second time says false", async () => {
    await clear();
    const [id] = await publish([wakeup()]);
    const c = await consumer();
    const [m] = await c.receive(1);
    if (m === undefined) throw new Error("nothing received");
    expect(await c.deadLetter(m, "poison: line 3 claims another org")).toBe(true);
    expect(await c.deadLetter(m, "again")).toBe(false);
    expect(await c.ack(m)).toBe(false);
    const letters = await nats()
      .queue.admin()
      .listDeadLetters({ queues: ["task_wakeup"] });
    expect(letters.map((l) => ({ id: l.id, lastError: l.lastError, n: l.receiveCount }))).toEqual([
      { id: String(id), lastError: "poison: line 3 claims another org", n: 1 },
    ]);
    expect(await nats().queue.admin().redrive({ queue: "task_wakeup" })).toBe(1);
  });

  test("a payload that breaks the contract, or is not JSON, is dead-lettered on receive and never returned", async () => {
    await clear();
    const js = nats().queue.publisher();
    await js.publish("task_wakeup", [{ payload: wakeup() }]);
    // Published around the contract check, as a foreign publisher could.
    const ready = nats().queue.names.of("task_wakeup").ready;
    const nc = await connect({ servers: TEST_NATS_URL.replace("nats://", "").split(",") });
    try {
      await jetstream(nc).publish(ready, JSON.stringify({ task_id: "not-a-uuid" }));
      await jetstream(nc).publish(ready, "{ not json");
    } finally {
      await nc.close();
    }
    const c = await consumer();
    const got = await c.receive(10);
    expect(got).toHaveLength(1);
    const letters = await nats()
      .queue.admin()
      .listDeadLetters({ queues: ["task_wakeup"] });
    expect(letters).toHaveLength(2);
    expect(letters.map((l) => l.payload)).toEqual([{ task_id: "not-a-uuid" }, "{ not json"]);
    for (const l of letters)
      expect(l.lastError).toContain("payload breaks the task_wakeup contract");
    await c.ackBatch(got);
  });

  test("availableAt hides a message until then, without counting a receive; depth says delayed", async () => {
    await clear();
    const c = await consumer();
    const at = Date.now() + 1_500;
    const [id] = await publish([wakeup()], { availableAt: new Date(at) });
    expect(await c.receive(10)).toHaveLength(0);
    await waitFor(async () => (await c.depth()).delayed === 1, { what: "the delayed count" });
    expect(await c.depth()).toEqual({ ready: 0, inFlight: 0, delayed: 1 });
    const [m] = await receiveSome(c, "the delayed message once due");
    expect(Date.now()).toBeGreaterThanOrEqual(at - 50);
    expect(m?.id).toBe(id);
    expect(m?.receiveCount).toBe(1);
    // A time already past publishes for now.
    const [now] = await publish([wakeup()], { availableAt: new Date(Date.now() - 1000) });
    const [n] = await c.receive(10);
    expect(n?.id).toBe(now);
    if (m !== undefined && n !== undefined) expect(await c.ackBatch([m, n])).toBe(2);
  });

  test("a repeat of a dedupeId within the window stores nothing and answers the first id", async () => {
    await clear();
    const payload = wakeup();
    const dedupeId = `outbox-${randomUUID()}`;
    const [first] = await publish([payload], { dedupeId });
    const [second] = await publish([payload], { dedupeId });
    expect(second).toBe(first);
    const c = await consumer();
    expect(await c.depth()).toEqual({ ready: 1, inFlight: 0, delayed: 0 });
    const got = await c.receive(10);
    expect(got.map((m) => m.id)).toEqual([String(first)]);
    await c.ackBatch(got);
  });

  test("depths count ready, in flight, delayed and dead per queue", async () => {
    await clear();
    const c = await consumer({ visibilityTimeoutMs: 60_000, maxReceives: 5 });
    await publish([wakeup(), wakeup(), wakeup(), wakeup()]);
    await publish([wakeup()], { availableAt: new Date(Date.now() + 60_000) });
    const [a, b] = await c.receive(2);
    if (a === undefined || b === undefined) throw new Error("nothing received");
    await c.deadLetter(b, "dead");
    await waitFor(async () => (await c.depth()).delayed === 1, { what: "the delayed count" });
    const depths = await nats().queue.admin().depths();
    expect(depths.find((d) => d.queue === "task_wakeup")).toEqual({
      queue: "task_wakeup",
      ready: 2,
      inFlight: 1,
      delayed: 1,
      dead: 1,
    });
    expect(depths.find((d) => d.queue === "buffer_queue")).toEqual({
      queue: "buffer_queue",
      ready: 0,
      inFlight: 0,
      delayed: 0,
      dead: 0,
    });
    await c.ack(a);
  });

  test("wait resolves on a publish, after its timeout, or on abort", async () => {
    await clear();
    const c = await consumer();
    const woken = c.wait(30_000);
    expect(await c.receive(1)).toHaveLength(0);
    const started = performance.now();
    await publish([wakeup()]);
    await woken;
    expect(performance.now() - started).toBeLessThan(5_000);
    const [m] = await c.receive(1);
    if (m !== undefined) await c.ack(m);

    const t0 = performance.now();
    await c.wait(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);

    const abort = new AbortController();
    const aborted = c.wait(30_000, abort.signal);
    abort.abort();
    await aborted;
  });
});
