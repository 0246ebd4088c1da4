import { randomUUID } from "node:crypto";
import { PgBoss } from "pg-boss";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * pg-boss 12: insert `count` jobs, then `concurrency` workers each loop
 * fetch(batchSize) → complete(ids) until a fetch comes back empty.
 *
 * Its own `work()` sleeps `pollingIntervalSeconds` (≥ 0.5 s) between fetches
 * unless a burst trigger fires, and at batchSize 1 the only trigger reads a
 * stats cache refreshed at most once a second; the fetch/complete loop is
 * what `work()` does per worker without those sleeps, so it is pg-boss at
 * its best. Maintenance and scheduling are off so nothing else competes.
 */
subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const boss = new PgBoss({
    connectionString: params.url,
    max: concurrency,
    supervise: false,
    schedule: false,
  });
  boss.on("error", (error) => console.error("pg-boss:", error));
  await boss.start();
  try {
    const queue = "bench";
    await boss.createQueue(queue);
    const published = performance.now();
    const jobs = Array.from({ length: params.count }, () => ({ data: { task_id: randomUUID() } }));
    for (const part of chunks(jobs, 1000)) await boss.insert(queue, part);
    const publishSeconds = since(published);

    let done = 0;
    const worker = async () => {
      for (;;) {
        const fetched = await boss.fetch(queue, { batchSize: batch });
        if (fetched.length === 0) return;
        // The no-op handler.
        await boss.complete(
          queue,
          fetched.map((j) => j.id),
        );
        done += fetched.length;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = since(start);
    if (done !== params.count) throw new Error(`completed ${done} of ${params.count}`);
    return { items: done, seconds, extra: { publish_per_s: params.count / publishSeconds } };
  } finally {
    await boss.stop({ graceful: false, timeout: 1000 }).catch(() => {});
  }
});
