import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { connect } from "../src/db/connect";
import { openObjectStore } from "../src/objectstore";
import { PgQueue } from "../src/queue/pg/backend";
import { spawnHarness } from "../test/support/processes";
import { waitFor } from "../test/support/wait";
import { openServer } from "./lib/server";

/**
 * The sink's memory under big batches (issue 12, "bounded memory"): a real
 * `harness sink` (default --concurrency 4, so five batches in hand) ingests
 * five batches of `--mb` MB each, and its peak RSS (VmHWM, /proc) is printed
 * per shape. Exit 1 when a peak reaches 512 MB.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bun bench/sink-memory.ts
 *   bun bench/sink-memory.ts --mb 60 --shapes single,1k,200b
 *
 * Shapes: `single` — one line per batch (refused at its first MiB: poison);
 * `1k` and `200b` — valid batches of 1 KB and 200 B lines (ingested).
 * test/sink/memory.test.ts runs the `single` shape as a test; the valid
 * shapes take minutes (millions of rows), so they live here.
 */

const MB = 1024 * 1024;
const LIMIT_MB = 512;
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (process.argv[i + 1] ?? fallback);
};
const batchMb = Number(arg("mb", "60"));
const shapes = arg("shapes", "single,1k,200b").split(",");
const BATCHES = 5;

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** A line of about `bytes` bytes (its attributes padded). */
function line(task: string, i: number, bytes: number): string {
  const base = JSON.stringify({
    dedupe_key: `${task}:${i}`,
    org_id: "acme",
    source: "bench",
    severity: "low",
    title: "memory",
    occurred_at: "2024-01-01T00:00:00Z",
    attributes: { pad: "" },
  });
  return `${base.replace('"pad":""', `"pad":"${"x".repeat(Math.max(0, bytes - base.length - 1))}"`)}\n`;
}

function body(shape: string, task: string): string {
  const target = batchMb * MB;
  if (shape === "single") return line(task, 0, target);
  const lineBytes = shape === "1k" ? 1000 : 200;
  const parts: string[] = [];
  for (let size = 0, i = 0; size < target; i++) {
    const l = line(task, i, lineBytes);
    parts.push(l);
    size += l.length;
  }
  return parts.join("");
}

async function run(shape: string, url: string) {
  const dir = mkdtempSync(join(tmpdir(), "harness-sink-memory-"));
  const storeUrl = pathToFileURL(dir).href;
  const sql = connect(url, { name: "bench-sink-memory", max: 2 });
  const queue = PgQueue.open(url, { name: "bench-sink-memory" });
  const noS3 = {
    endpoint: undefined,
    accessKeyId: undefined,
    secretAccessKey: undefined,
    region: undefined,
  };
  try {
    const store = await openObjectStore(storeUrl, noS3);
    for (let i = 0; i < BATCHES; i++) {
      const task = randomUUID();
      const key = `acme/${task}/1-${randomUUID()}.jsonl`;
      const put = await store.put(key, body(shape, task), { contentType: "application/x-ndjson" });
      const payload = {
        task_id: task,
        org_id: "acme",
        attempt: 1,
        batch_uri: put.uri,
        content_type: "application/x-ndjson" as const,
        batch_size_bytes: put.size,
      };
      await queue.publisher().publish("buffer_queue", [{ payload }]);
    }
    const started = performance.now();
    const sink = spawnHarness("sink", ["sink"], {
      DATABASE_URL: url,
      OBJECT_STORE_URL: storeUrl,
      LOG_LEVEL: "warn",
      VISIBILITY_TIMEOUT_MS: "600000",
    });
    try {
      await waitFor(
        async () => {
          const [r] =
            await sql`SELECT count(*)::int AS n FROM state.queue_messages WHERE queue_name = 'buffer_queue'`;
          return r?.n === 0;
        },
        { what: "the sink to empty buffer_queue", timeoutMs: 1_800_000, intervalMs: 200 },
      );
      const peak = peakRssMb(sink.proc.pid);
      const seconds = (performance.now() - started) / 1000;
      const [r] = await sql`SELECT (SELECT count(*)::int FROM data.alert_events) AS rows,
        (SELECT count(*)::int FROM state.queue_messages WHERE queue_name = 'buffer_queue.dlq') AS dead`;
      return {
        shape,
        batches: BATCHES,
        mb: batchMb,
        peakRssMb: Math.round(peak),
        seconds: Math.round(seconds),
        rows: r?.rows,
        deadLetters: r?.dead,
      };
    } finally {
      await sink.stop();
    }
  } finally {
    await queue.close();
    await sql.end({ timeout: 1 });
    rmSync(dir, { recursive: true, force: true });
  }
}

const server = await openServer();
let failed = false;
try {
  for (const shape of shapes) {
    const db = await server.createDatabase("state", `sink_memory_${shape}`);
    try {
      const result = await run(shape, db.url);
      failed ||= result.peakRssMb >= LIMIT_MB;
      console.log(JSON.stringify(result));
    } finally {
      await db.drop();
    }
  }
} finally {
  await server.close();
}
process.exit(failed ? 1 : 0);
