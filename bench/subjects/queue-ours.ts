import { randomUUID } from "node:crypto";
import { PgQueue } from "../../src/queue/pg/backend";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * Ours: publish `count` wakeups, then `concurrency` loops on one pgqueue
 * consumer (as a worker's slots share theirs) each receive(batch) → ack
 * (batch 1) or ackBatch, with a no-op handler, until a receive comes back
 * empty. Timed: from the first receive to the last ack.
 */
subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const queue = PgQueue.open(params.url, { name: "bench-ours", connections: concurrency });
  try {
    const published = performance.now();
    const payloads = Array.from({ length: params.count }, () => ({
      payload: { task_id: randomUUID() },
    }));
    for (const part of chunks(payloads, 1000)) await queue.publisher().publish("task_wakeup", part);
    const publishSeconds = since(published);

    const wakeups = await queue.consumer("task_wakeup", {
      visibilityTimeoutMs: 60_000,
      maxReceives: 5,
    });
    let done = 0;
    const consumer = async () => {
      for (;;) {
        const messages = await wakeups.receive(batch);
        if (messages.length === 0) return;
        // The no-op handler: nothing to do with the payload.
        if (batch === 1) {
          for (const m of messages) if (await wakeups.ack(m)) done++;
        } else {
          // Not `done += await …`: that reads `done` before the await and loses the others' acks.
          const acked = await wakeups.ackBatch(messages);
          done += acked;
        }
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, consumer));
    const seconds = since(start);
    if (done !== params.count) throw new Error(`acked ${done} of ${params.count}`);
    return { items: done, seconds, extra: { publish_per_s: params.count / publishSeconds } };
  } finally {
    await queue.close();
  }
});
