import { randomUUID } from "node:crypto";
import { NatsQueue } from "../../src/queue/nats/backend";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * The NATS column of the queue workloads: the same loop as queue-ours.ts
 * (publish `count` wakeups, then `concurrency` consumers receive(max: batch)
 * → ack or ackBatch with a no-op handler until a receive comes back empty),
 * on NatsQueue against BENCH_NATS_URL (default the local nats-server), in a
 * namespace of its own that is dropped afterwards. The database it is given
 * is not used. Timed: from the first receive to the last ack.
 */
subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const url = process.env.BENCH_NATS_URL ?? "nats://127.0.0.1:4222";
  const namespace = `bench_${process.pid}_${randomUUID().slice(0, 6)}`;
  const q = await NatsQueue.open({ url, namespace, name: "bench-nats" }).catch((cause: unknown) => {
    throw new Error(`no NATS at ${url}: start nats-server -js or set BENCH_NATS_URL`, { cause });
  });
  try {
    const visibilityTimeoutMs = 60_000;
    await q.ensure({ visibilityTimeoutMs, replicas: 1 });
    const published = performance.now();
    const payloads = Array.from({ length: params.count }, () => ({
      payload: { task_id: randomUUID() },
    }));
    for (const part of chunks(payloads, 1000)) await q.publisher().publish("task_wakeup", part);
    const publishSeconds = since(published);

    const consumers = await Promise.all(
      Array.from({ length: concurrency }, () =>
        q.consumer("task_wakeup", { visibilityTimeoutMs, maxReceives: 5 }),
      ),
    );
    let done = 0;
    const start = performance.now();
    await Promise.all(
      consumers.map(async (c) => {
        for (;;) {
          const messages = await c.receive(batch);
          if (messages.length === 0) return;
          if (batch === 1) {
            for (const m of messages) if (await c.ack(m)) done++;
          } else {
            const acked = await c.ackBatch(messages);
            done += acked;
          }
        }
      }),
    );
    const seconds = since(start);
    if (done !== params.count) throw new Error(`acked ${done} of ${params.count}`);
    return { items: done, seconds, extra: { publish_per_s: params.count / publishSeconds } };
  } finally {
    await q.drop().catch(() => undefined);
    await q.close();
  }
});
