import { pathToFileURL } from "node:url";
import { Logger, run, type Task } from "graphile-worker";
import * as v from "valibot";
import { NDJSON } from "../../src/contracts/common";
import { connect } from "../../src/db/connect";
import { openObjectStore } from "../../src/objectstore";
import { fetchBatch } from "../../src/sink/fetch";
import { alertEventsInsertBatch } from "../../src/sink/sql";
import { alertsFor, toJsonl } from "../../src/worker/alerts";
import { batchKey } from "../../src/worker/attempt";

/**
 * One process of the graphile-worker reference pipeline (workloads/e2e.ts):
 * what a user would build on graphile-worker 0.18 instead of harness, with
 * no leases, fencing, tokens or outbox. GRAPHILE_ROLE picks its tasks:
 *
 * - `make`: `make_batch` jobs. Writes the task's lines as our worker does
 *   (src/worker/alerts.ts: the same alerts, the same JSONL) to the file store
 *   (the store's create, as our worker writes: the file in place with O_EXCL,
 *   fsync, fsync of the folder: src/objectstore/file.ts),
 *   then adds an `ingest_batch` job.
 * - `ingest`: `ingest_batch` jobs. Reads the file and validates every line as
 *   our sink does (src/sink/fetch.ts: the AlertLine contract, line by line),
 *   then the sink's own insert (src/sink/sql.ts: INSERT … jsonb_to_recordset ON
 *   CONFLICT DO NOTHING with its data.sink_batches row, one statement) on a
 *   postgres.js pool of CONCURRENCY connections.
 *
 * A graphile-worker runner only fetches the jobs of the tasks in its
 * taskList, so the two roles share one jobs table. Env: DATABASE_URL,
 * STORE_DIR, CONCURRENCY, ALERTS. Says "READY" on stderr once running.
 */

const silent = new Logger(() => () => {});
const s3 = {
  endpoint: undefined,
  accessKeyId: undefined,
  secretAccessKey: undefined,
  region: undefined,
};
const MAX_BATCH_BYTES = 64 << 20;

const MakePayload = v.object({ task_id: v.pipe(v.string(), v.uuid()), org_id: v.string() });
const IngestPayload = v.object({
  task_id: v.pipe(v.string(), v.uuid()),
  org_id: v.string(),
  batch_uri: v.string(),
  batch_size_bytes: v.number(),
});

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const role = env("GRAPHILE_ROLE");
  const url = env("DATABASE_URL");
  const concurrency = Number(env("CONCURRENCY"));
  const alerts = Number(env("ALERTS"));
  const store = await openObjectStore(pathToFileURL(env("STORE_DIR")).href, s3);

  const makeBatch: Task = async (raw, helpers) => {
    const p = v.parse(MakePayload, raw);
    const body = toJsonl(alertsFor(p.org_id, p.task_id, { alerts }));
    const key = batchKey({ org_id: p.org_id, task_id: p.task_id, attempt: 1 });
    const put = await store.create(key, body, { contentType: NDJSON });
    await helpers.addJob("ingest_batch", {
      task_id: p.task_id,
      org_id: p.org_id,
      batch_uri: put.uri,
      batch_size_bytes: put.size,
    });
  };

  const data = connect(url, { name: "graphile-sink-data", max: concurrency });
  const ingestBatch: Task = async (raw) => {
    const p = v.parse(IngestPayload, raw);
    const message = { ...p, attempt: 1, content_type: "application/x-ndjson" as const };
    const fetched = await fetchBatch(store, message, MAX_BATCH_BYTES);
    if (fetched.kind !== "ok") throw new Error(`batch ${p.batch_uri}: ${fetched.reason}`);
    await alertEventsInsertBatch(data, {
      taskId: p.task_id,
      orgId: p.org_id,
      attempt: 1,
      batchUri: p.batch_uri,
      rows: fetched.rows,
    });
  };

  const taskList: Record<string, Task> =
    role === "make" ? { make_batch: makeBatch } : { ingest_batch: ingestBatch };
  const runner = await run({
    connectionString: url,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    logger: silent,
    taskList,
  });
  process.stderr.write("READY\n");
  const stop = async () => {
    await runner.stop().catch(() => {});
    await data.end({ timeout: 1 });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  await runner.promise;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
