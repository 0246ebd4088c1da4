import { randomUUID } from "node:crypto";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { connect } from "../../src/db/connect";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * graphile-worker 0.18: add `count` jobs, then run a worker with
 * `concurrency` and a no-op task. Default mode fetches and completes one job
 * per query; `batched: 1` turns on its batching (`localQueue.size = batch`,
 * `completeJobBatchDelay = 0`, `failJobBatchDelay = 0`). Timed: from `run()`
 * until the jobs table is empty (completion may be batched after the handler).
 */
const silent = new Logger(() => () => {});

subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const batched = option(params, "batched") === 1;
  const utils = await makeWorkerUtils({ connectionString: params.url, logger: silent });
  const published = performance.now();
  try {
    await utils.migrate();
    const jobs = Array.from({ length: params.count }, () => ({
      identifier: "noop",
      payload: { task_id: randomUUID() },
    }));
    for (const part of chunks(jobs, 1000)) await utils.addJobs(part);
  } finally {
    await utils.release();
  }
  const publishSeconds = since(published);

  const probe = connect(params.url, { name: "bench-probe", max: 1 });
  let handled = 0;
  let allHandled: () => void = () => {};
  const handledAll = new Promise<void>((resolve) => {
    allHandled = resolve;
  });
  const start = performance.now();
  const runner = await run({
    connectionString: params.url,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    logger: silent,
    taskList: {
      noop: async () => {
        handled++;
        if (handled === params.count) allHandled();
      },
    },
    ...(batched
      ? {
          preset: {
            worker: {
              localQueue: { size: batch },
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
            },
          },
        }
      : {}),
  });
  try {
    await handledAll;
    // Completion can trail the handler (batched mode): wait for the table to empty.
    for (;;) {
      const [row] = await probe`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`;
      if (row?.n === 0) break;
      await Bun.sleep(2);
    }
    const seconds = since(start);
    return {
      items: handled,
      seconds,
      extra: { publish_per_s: params.count / publishSeconds },
    };
  } finally {
    await runner.stop().catch(() => {});
    await probe.end({ timeout: 1 });
  }
});
