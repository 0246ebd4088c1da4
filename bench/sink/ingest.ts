/**
 * Sink throughput on a real PostgreSQL (default postgres://postgres@127.0.0.1:5432/postgres,
 * or BENCH_DATABASE_URL): rows per second from 1,000-line batches through the real sink
 * loop (queue receive, file-store fetch, strict validation, one INSERT … unnest, ack),
 * the same batches again as all duplicates, and the baselines it is held to: a bare
 * multi-row insert of pre-built columns and COPY.
 *
 *   bun bench/sink/ingest.ts [--batches 100] [--concurrency 1,4]
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { connect, type Sql } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";
import type { Logger } from "../../src/log";
import { type ObjectStore, openObjectStore } from "../../src/objectstore";
import { publishBatch } from "../../src/queue";
import { runSinkLoop } from "../../src/sink/loop";
import { newSinkMetrics } from "../../src/sink/metrics";
import { checkBatch } from "../../src/sink/validate";

const { values } = parseArgs({
  options: {
    batches: { type: "string", default: "100" },
    concurrency: { type: "string", default: "1,4" },
    rounds: { type: "string", default: "2" },
  },
});
const BATCHES = Number(values.batches);
const LINES = 1000;
const ADMIN = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function line(org: string, task: string, i: number): string {
  return JSON.stringify({
    dedupe_key: `${task}:${i}`,
    org_id: org,
    source: "bench",
    severity: ["info", "low", "medium", "high", "critical"][i % 5],
    title: `alert ${i} of task ${task}`,
    occurred_at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
    attributes: { index: i, host: `host-${i % 17}`, tags: ["a", "b"] },
  });
}

interface Batch {
  task: string;
  uri: string;
  size: number;
  body: string;
}

async function makeBatches(store: ObjectStore, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let b = 0; b < n; b++) {
    const task = randomUUID();
    const body = Array.from({ length: LINES }, (_, i) => `${line("bench", task, i)}\n`).join("");
    const { uri, size } = await store.put(`bench/${task}/1-${b}.jsonl`, body, {
      contentType: "application/x-ndjson",
    });
    out.push({ task, uri, size, body });
  }
  return out;
}

async function freshDb(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `harness_bench_sink_${Date.now()}`;
  const admin = connect(ADMIN, { name: "bench-admin", max: 1 });
  await admin`CREATE DATABASE ${admin(name)}`;
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  const sql = connect(u.toString(), { name: "bench-migrate", max: 1 });
  await migrateDatabase(sql, "state");
  await migrateDatabase(sql, "data");
  await sql.end();
  return {
    url: u.toString(),
    drop: async () => {
      await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
      await admin.end();
    },
  };
}

async function truncate(sql: Sql) {
  await sql`TRUNCATE data.alert_events, data.sink_batches, state.queue_messages`;
}

async function sinkRun(sql: Sql, store: ObjectStore, batches: Batch[], concurrency: number) {
  await publishBatch(
    sql,
    "buffer_queue",
    batches.map((b) => ({
      task_id: b.task,
      org_id: "bench",
      attempt: 1,
      batch_uri: b.uri,
      content_type: "application/x-ndjson" as const,
      batch_size_bytes: b.size,
    })),
  );
  const metrics = newSinkMetrics();
  const t0 = performance.now();
  await runSinkLoop(
    {
      state: sql,
      stateSql: sql,
      data: sql,
      store,
      maxBatchBytes: 64 << 20,
      visibilityTimeoutMs: 30_000,
      log: quiet,
      metrics,
    },
    { concurrency, maxReceives: 5, untilIdle: true, idleMs: 0, stop: new AbortController().signal },
  );
  const ms = performance.now() - t0;
  return { ms, rows: metrics.rowsInserted + metrics.rowsSkipped, metrics };
}

/** A bare multi-row insert of columns built beforehand: no queue, fetch, validation, ordering or batch row. */
async function bareInsert(sql: Sql, batches: Batch[], concurrency: number) {
  const columns = batches.map((b) => {
    const check = checkBatch(new TextEncoder().encode(b.body), "bench");
    if (!check.ok) throw new Error(check.reason);
    return { b, columns: check.columns };
  });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < columns.length; i = next++) {
        const c = columns[i];
        if (c === undefined) break;
        const k = c.columns;
        await sql`
          INSERT INTO data.alert_events
            (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
          SELECT u.k, 'bench', ${c.b.task}::uuid, u.s, u.sev::data.severity, u.t,
                 u.o::timestamptz, u.a::jsonb
          FROM unnest(${k.dedupeKeys}::text[], ${k.sources}::text[], ${k.severities}::text[],
                      ${k.titles}::text[], ${k.occurredAts}::text[], ${k.attributes}::text[])
            AS u(k, s, sev, t, o, a)
          ON CONFLICT (dedupe_key) DO NOTHING`;
      }
    }),
  );
  return performance.now() - t0;
}

async function copyRows(sql: Sql, batches: Batch[]) {
  const tsv = batches.map((b) =>
    b.body
      .trimEnd()
      .split("\n")
      .map((l) => {
        const a = JSON.parse(l);
        const attrs = JSON.stringify(a.attributes).replaceAll("\\", "\\\\");
        return `${a.dedupe_key}\tbench\t${b.task}\t${a.source}\t${a.severity}\t${a.title}\t${a.occurred_at}\t${attrs}\n`;
      })
      .join(""),
  );
  const t0 = performance.now();
  for (const chunk of tsv) {
    const w =
      await sql`COPY data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes) FROM STDIN`.writable();
    await new Promise<void>((resolve, reject) => {
      w.on("error", reject);
      w.on("finish", () => resolve());
      w.end(chunk);
    });
  }
  return performance.now() - t0;
}

function validateOnly(batches: Batch[]) {
  const bytes = batches.map((b) => new TextEncoder().encode(b.body));
  const t0 = performance.now();
  for (const b of bytes) if (!checkBatch(b, "bench").ok) throw new Error("invalid");
  return performance.now() - t0;
}

const rate = (rows: number, ms: number) =>
  `${Math.round(rows / (ms / 1000)).toLocaleString("en")} rows/s`;

async function main() {
  const db = await freshDb();
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-sink-"));
  const url = pathToFileURL(dir).href;
  const s3 = {
    endpoint: undefined,
    accessKeyId: undefined,
    secretAccessKey: undefined,
    region: undefined,
  };
  const store = await openObjectStore(url, s3);
  const sql = connect(db.url, { name: "bench", max: 12 });
  try {
    const batches = await makeBatches(store, BATCHES);
    const total = BATCHES * LINES;
    console.log(`${BATCHES} batches × ${LINES} lines (${(batches[0]?.size ?? 0) / 1000} kB each)`);
    const vms = validateOnly(batches);
    console.log(`validate only (decode + JSON.parse + valibot):  ${rate(total, vms)}`);
    for (const c of values.concurrency.split(",").map(Number))
      for (let round = 1; round <= Number(values.rounds); round++) {
        await truncate(sql);
        const bare = await bareInsert(sql, batches, c);
        await truncate(sql);
        const fresh = await sinkRun(sql, store, batches, c);
        const dup = await sinkRun(sql, store, batches, c);
        if (fresh.metrics.rowsInserted !== total || dup.metrics.rowsSkipped !== total) {
          throw new Error(`unexpected counts ${JSON.stringify([fresh.metrics, dup.metrics])}`);
        }
        console.log(`concurrency ${c}, round ${round}:`);
        console.log(`  bare INSERT … unnest (no queue/fetch/validate): ${rate(total, bare)}`);
        console.log(
          `  sink, new rows:      ${rate(total, fresh.ms)}  (${Math.round((100 * bare) / fresh.ms)}% of bare)`,
        );
        console.log(`  sink, all duplicates: ${rate(total, dup.ms)}`);
      }
    await truncate(sql);
    const copy = await copyRows(sql, batches);
    console.log(`COPY (1 in flight, rows pre-formatted): ${rate(total, copy)}`);
  } finally {
    await sql.end();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
