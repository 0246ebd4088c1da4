import { afterAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { NatsQueue } from "../../src/queue/nats/backend";
import type { NatsConsumer } from "../../src/queue/nats/consumer";
import { ownNatsCluster, ownNatsServer, useOwnNats } from "../support/nats";
import { waitFor } from "../support/wait";

useOwnNats();

/**
 * The NATS backend when the broker goes away: a server restarted under a
 * live backend, and a three-node cluster (R3 streams) losing a node to
 * kill -9 mid-traffic. No message whose publish was acknowledged is lost, no
 * acked message comes back, and the same backend object keeps working.
 */

const opened: NatsQueue[] = [];
afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
});

async function open(url: string, name: string): Promise<NatsQueue> {
  const q = await NatsQueue.open({ url, name });
  opened.push(q);
  return q;
}

const OPTS = { visibilityTimeoutMs: 2_000, maxReceives: 100 };

/** Publishes each task id until the broker acknowledges it (the outbox drainer's way: same dedupe id on a retry). */
async function publishAll(q: NatsQueue, ids: string[], published: Set<string>): Promise<void> {
  for (const id of ids) {
    await waitFor(
      async () => {
        await q.publisher().publish("task_wakeup", [{ payload: { task_id: id }, dedupeId: id }]);
        published.add(id);
        return true;
      },
      { what: `publishing ${id}`, timeoutMs: 60_000, intervalMs: 100 },
    );
  }
}

interface Tally {
  received: Set<string>;
  acked: Set<string>;
  /** Received again after its ack had succeeded: must stay empty. */
  back: string[];
  failures: number;
}

/** Receives and acks one message at a time until told to stop, riding out broker failures. */
async function consumeAll(
  c: NatsConsumer<"task_wakeup">,
  t: Tally,
  stop: () => boolean,
): Promise<void> {
  while (!stop()) {
    try {
      const got = await c.receive(1);
      if (got.length === 0) {
        await c.wait(200);
        continue;
      }
      for (const m of got) {
        const id = m.payload.task_id;
        if (t.acked.has(id)) t.back.push(id);
        t.received.add(id);
        if (await c.ack(m)) t.acked.add(id);
      }
    } catch {
      t.failures++;
      await c.wait(100);
    }
  }
}

describe("NATS backend under broker failures", () => {
  /** Publishes 10, acks 5, lets the server go down and come back, then drains with the same backend. */
  async function restartScenario(how: "stop" | "kill") {
    const server = await ownNatsServer({ name: `restart-${how}` });
    const q = await open(server.url, `restart-${how}`);
    await q.ensure({ visibilityTimeoutMs: 3_000 });
    const c = await q.consumer("task_wakeup", OPTS);
    const first = Array.from({ length: 10 }, () => randomUUID());
    await q.publisher().publish(
      "task_wakeup",
      first.map((task_id) => ({ payload: { task_id } })),
    );
    const held = await c.receive(5);
    expect(await c.ackBatch(held)).toBe(5);

    if (how === "kill") await server.kill();
    else await server.stop();
    await server.restart();

    const later = randomUUID();
    const delayed = randomUUID();
    await waitFor(
      async () => {
        await q.publisher().publish("task_wakeup", [{ payload: { task_id: later } }]);
        return true;
      },
      { what: "a publish after the restart", timeoutMs: 30_000, intervalMs: 200 },
    );
    // The delayed-message mover came back too.
    await q
      .publisher()
      .publish("task_wakeup", [
        { payload: { task_id: delayed }, availableAt: new Date(Date.now() + 500) },
      ]);
    const seen = new Set<string>();
    await waitFor(
      async () => {
        for (const m of await c.receive(10)) {
          seen.add(m.payload.task_id);
          await c.ack(m);
        }
        const d = await c.depth();
        return seen.has(delayed) && d.ready + d.inFlight + d.delayed === 0;
      },
      { what: "the queue drained after the restart", timeoutMs: 30_000 },
    );
    const acked = held.map((m) => m.payload.task_id);
    return { seen, unacked: [...first.slice(5), later, delayed], acked };
  }

  test("a server stopped and restarted under a live backend: it reconnects, nothing is lost, no ack is undone", async () => {
    const { seen, unacked, acked } = await restartScenario("stop");
    expect([...seen].sort()).toEqual([...unacked].sort());
    for (const id of acked) expect(seen.has(id)).toBe(false);
  }, 90_000);

  test("a single server killed with -9: nothing unacked is lost (acks of its last moments may be redelivered: NATS 2.9 on one node)", async () => {
    const { seen, unacked } = await restartScenario("kill");
    for (const id of unacked) expect(seen.has(id)).toBe(true);
  }, 90_000);

  test("a 3-node cluster loses its stream leader to kill -9 mid-traffic: every acknowledged publish is delivered, no ack is undone, the backend carries on", async () => {
    const cluster = await ownNatsCluster("kill");
    const q = await open(cluster.url, "cluster");
    await q.ensure({ visibilityTimeoutMs: 30_000 });
    const info = await q.streamInfo("task_wakeup");
    expect(info.config.num_replicas).toBe(3);

    const ids = Array.from({ length: 300 }, () => randomUUID());
    const published = new Set<string>();
    const t: Tally = { received: new Set(), acked: new Set(), back: [], failures: 0 };
    let done = false;
    const consumers = await Promise.all([
      q.consumer("task_wakeup", OPTS),
      (await open(cluster.url, "cluster-2")).consumer("task_wakeup", OPTS),
    ]);
    const running = consumers.map((c) => consumeAll(c, t, () => done));
    const publishing = publishAll(q, ids, published);

    await waitFor(() => t.acked.size >= 60, { what: "traffic before the kill", timeoutMs: 60_000 });
    const leader = (await q.streamInfo("task_wakeup")).cluster?.leader;
    const victim = cluster.nodes.find((n) => n.name === leader);
    if (victim === undefined) throw new Error(`no node is the stream leader ${leader}`);
    await victim.kill();

    await publishing;
    // An ack that timed out in the failover may still have been applied: "done" is received and gone.
    const c = consumers[0];
    if (c === undefined) throw new Error("no consumer");
    await waitFor(
      async () => {
        if (!ids.every((id) => t.received.has(id))) return false;
        const d = await c.depth();
        return d.ready + d.inFlight + d.delayed === 0;
      },
      {
        what: "every published message received, and the queue empty",
        timeoutMs: 120_000,
        intervalMs: 200,
      },
    );
    done = true;
    await Promise.all(running);

    expect(published.size).toBe(ids.length);
    expect(t.back).toEqual([]);
    expect((await q.streamInfo("task_wakeup")).state.messages).toBe(0);

    // The same backend, two nodes left: still publishes, receives, acks, dead-letters.
    const after = randomUUID();
    await q.publisher().publish("task_wakeup", [{ payload: { task_id: after } }]);
    const [m] = await waitFor(
      async () => {
        const got = await c.receive(1);
        return got.length > 0 ? got : undefined;
      },
      { what: "a message published after the kill" },
    );
    expect(m?.payload.task_id).toBe(after);
    if (m !== undefined) expect(await c.deadLetter(m, "after the kill")).toBe(true);
    expect((await q.admin().listDeadLetters({})).map((l) => l.lastError)).toEqual([
      "after the kill",
    ]);
  }, 240_000);
});
