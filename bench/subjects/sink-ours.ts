import { pathToFileURL } from "node:url";
import { BACKGROUND_ACK_LINGER_MS } from "../../src/background";
import type { BufferMessage } from "../../src/contracts/queue";
import { connect } from "../../src/db/connect";
import type { Logger } from "../../src/log";
import { openObjectStore } from "../../src/objectstore";
import { PgQueue } from "../../src/queue/pg/backend";
import { runSinkLoop } from "../../src/sink/loop";
import { newSinkMetrics } from "../../src/sink/metrics";
import { checkBatch } from "../../src/sink/validate";
import { makeBatches, ORG } from "../lib/alerts";
import { meteredRows } from "../lib/pgcpu";
import { option, since, subjectMain } from "../lib/protocol";
import { scratchDir } from "../lib/scratch";

/**
 * Workload 3, ours: the batches written to a file store, one buffer_queue
 * message each, then the real sink loop (`harness sink`'s: receive, fetch,
 * validate whole, one INSERT … ON CONFLICT DO NOTHING per
 * batch with its sink_batches row, ack) with `concurrency` writes in flight, until the
 * queue is empty. Timed: the loop. With `duplicates` 1 the same messages are
 * ingested once untimed, then again, timed (a redelivery: the sink finds each
 * batch recorded); with 2 the timed run is the same rows as a second attempt
 * of each task writes them, new objects and messages (the sink finds every
 * key stored). Also
 * `sink_js_ms_per_1000_rows`: this process's CPU over the loop (the sink's
 * JavaScript: fetch, validation, statements, queue), and
 * `postgres_ms_per_1000_rows`: PostgreSQL's (../lib/pgcpu.ts).
 */

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const s3 = {
  endpoint: undefined,
  accessKeyId: undefined,
  secretAccessKey: undefined,
  region: undefined,
};

subjectMain(async (params) => {
  const concurrency = option(params, "concurrency");
  const duplicates = option(params, "duplicates");
  const scratch = scratchDir("harness-bench-sink-");
  const dir = scratch.dir;
  const store = await openObjectStore(pathToFileURL(dir).href, s3);
  // Two pools as `harness sink` opens them (src/sink/main.ts): STATE (the queue's, and its LISTEN) and DATA.
  const state = PgQueue.open(params.url, {
    name: "bench-sink-state",
    connections: concurrency + 2,
    ackLingerMs: BACKGROUND_ACK_LINGER_MS,
  });
  const data = connect(params.url, { name: "bench-sink-data", max: concurrency + 1 });
  try {
    const batches = makeBatches(params.count);
    /** The batches as `attempt` of their tasks writes them: its objects, its messages. */
    const written = async (attempt: number) => {
      const messages: { payload: BufferMessage }[] = [];
      for (const [i, b] of batches.entries()) {
        const put = await store.put(`${ORG}/${b.task}/${attempt}-${i}.jsonl`, b.body, {
          contentType: "application/x-ndjson",
        });
        messages.push({
          payload: {
            task_id: b.task,
            org_id: ORG,
            attempt,
            batch_uri: put.uri,
            content_type: "application/x-ndjson" as const,
            batch_size_bytes: put.size,
          },
        });
      }
      return messages;
    };
    const first = await written(1);
    const timed = duplicates === 2 ? await written(2) : first;
    const validateStart = performance.now();
    for (const b of batches) checkBatch(new TextEncoder().encode(b.body), ORG);
    const validatePerS = params.count / since(validateStart);

    const queue = await state.consumer("buffer_queue", {
      visibilityTimeoutMs: 30_000,
      maxReceives: 5,
    });
    const ingest = async (messages: { payload: BufferMessage }[]) => {
      await state.publisher().publish("buffer_queue", messages);
      const metrics = newSinkMetrics();
      const { seconds, cpu } = await meteredRows(params.url, params.count, () =>
        runSinkLoop(
          {
            queue,
            data,
            store,
            maxBatchBytes: 64 << 20,
            visibilityTimeoutMs: 30_000,
            log: quiet,
            metrics,
          },
          {
            concurrency,
            untilIdle: true,
            idleMs: 0,
            stop: new AbortController().signal,
          },
        ),
      );
      return { seconds, metrics, cpu };
    };
    if (duplicates > 0) await ingest(first);
    const { seconds, metrics, cpu } = await ingest(timed);
    const want = duplicates > 0 ? metrics.rowsSkipped : metrics.rowsInserted;
    if (want !== params.count || metrics.deadLetters > 0) {
      throw new Error(`unexpected sink counts ${JSON.stringify(metrics)}`);
    }
    return {
      items: params.count,
      seconds,
      extra: { validate_only_rows_per_s: validatePerS, ...cpu },
    };
  } finally {
    await Promise.allSettled([state.close(), data.end({ timeout: 1 })]);
    scratch.release();
  }
});
