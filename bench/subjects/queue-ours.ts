import { randomUUID } from "node:crypto";
import { connect } from "../../src/db/connect";
import { ack, ackBatch, publishBatch, receive } from "../../src/queue";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * Ours: publish `count` wakeups, then `concurrency` consumers each loop
 * receive(max: batch) → ack (batch 1) or ackBatch, with a no-op handler,
 * until a receive comes back empty. Timed: from the first receive to the last ack.
 */
subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const sql = connect(params.url, { name: "bench-ours", max: concurrency });
  try {
    const published = performance.now();
    const payloads = Array.from({ length: params.count }, () => ({ task_id: randomUUID() }));
    for (const part of chunks(payloads, 1000)) await publishBatch(sql, "task_wakeup", part);
    const publishSeconds = since(published);

    const opts = { max: batch, visibilityTimeoutMs: 60_000, maxReceives: 5 };
    let done = 0;
    const consumer = async () => {
      for (;;) {
        const messages = await receive(sql, "task_wakeup", opts);
        if (messages.length === 0) return;
        // The no-op handler: nothing to do with the payload.
        if (batch === 1) {
          for (const m of messages) if (await ack(sql, m.id)) done++;
        } else {
          const acked = await ackBatch(
            sql,
            messages.map((m) => m.id),
          );
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
    await sql.end({ timeout: 1 });
  }
});
