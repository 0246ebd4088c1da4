import { afterAll, beforeAll, beforeEach } from "bun:test";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Sql } from "../../src/db/connect";
import type { Logger } from "../../src/log";
import { type ObjectStore, openObjectStore } from "../../src/objectstore";
import type { QueueBackend } from "../../src/queue/seam";
import { runSinkLoop } from "../../src/sink/loop";
import { newSinkMetrics, type SinkMetrics } from "../../src/sink/metrics";

/** Batches in a file store under a temp folder, buffer messages published straight to the queue. */

export interface TempStore {
  url: string;
  store: ObjectStore;
  remove(): void;
}

/** A temp file store for this test file: made before its tests, removed after. */
export function useTempStore(): () => TempStore {
  let current: TempStore | undefined;
  beforeAll(async () => {
    current = await tempStore();
  });
  afterAll(() => current?.remove());
  return () => {
    if (current === undefined) throw new Error("the temp store is only there inside tests");
    return current;
  };
}

/** Empties the queues and the sink's tables before each test of a file. */
export function clearBeforeEach(sql: () => Sql): void {
  beforeEach(async () => {
    await sql()`DELETE FROM state.queue_messages`;
    await sql()`DELETE FROM data.alert_events`;
    await sql()`DELETE FROM data.sink_batches`;
  });
}

export async function tempStore(): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), "harness-sink-"));
  const url = pathToFileURL(dir).href.replace(/\/+$/, "");
  const store = await openObjectStore(url, {
    endpoint: undefined,
    accessKeyId: undefined,
    secretAccessKey: undefined,
    region: undefined,
  });
  return { url, store, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function alert(org: string, key: string, extra: Record<string, unknown> = {}) {
  return {
    dedupe_key: key,
    org_id: org,
    source: "test",
    severity: "high",
    title: `alert ${key}`,
    occurred_at: "2024-05-01T12:00:00.123Z",
    attributes: { n: key.length, nested: { ok: true } },
    ...extra,
  };
}

export function jsonl(lines: readonly unknown[]): string {
  return lines.map((l) => `${typeof l === "string" ? l : JSON.stringify(l)}\n`).join("");
}

/** `count` good lines of `org` with keys `${prefix}-${i}`. */
export function goodLines(org: string, prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => alert(org, `${prefix}-${i}`));
}

export interface Batch {
  taskId: string;
  orgId: string;
  attempt: number;
  uri: string;
  size: number;
}

export async function putBatch(
  store: ObjectStore,
  body: string | Uint8Array,
  opts: { org?: string; taskId?: string; attempt?: number } = {},
): Promise<Batch> {
  const orgId = opts.org ?? "acme";
  const taskId = opts.taskId ?? randomUUID();
  const attempt = opts.attempt ?? 1;
  const key = `${orgId}/${taskId}/${attempt}-${randomUUID()}.jsonl`;
  const { uri, size } = await store.put(key, body, { contentType: "application/x-ndjson" });
  return { taskId, orgId, attempt, uri, size };
}

/** Publishes the buffer message of a batch; returns its id. */
export async function publishBatchMessage(
  queue: QueueBackend,
  b: Batch,
  override: { batch_uri?: string; batch_size_bytes?: number; org_id?: string } = {},
): Promise<string> {
  const payload = {
    task_id: b.taskId,
    org_id: override.org_id ?? b.orgId,
    attempt: b.attempt,
    batch_uri: override.batch_uri ?? b.uri,
    content_type: "application/x-ndjson" as const,
    batch_size_bytes: override.batch_size_bytes ?? b.size,
  };
  const [id] = await queue.publisher().publish("buffer_queue", [{ payload }]);
  if (id === undefined) throw new Error("publishing returned no id");
  return id;
}

export const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => quiet,
};

/**
 * Runs the sink loop in-process until the queue is idle: `buffer_queue` of
 * `db`'s queue for the state side, `db.sql` for the data side.
 */
export async function sinkUntilIdle(
  db: { sql: Sql; queue(): QueueBackend },
  store: ObjectStore,
  opts: { visibilityTimeoutMs?: number; maxReceives?: number; concurrency?: number } = {},
): Promise<SinkMetrics> {
  const visibilityTimeoutMs = opts.visibilityTimeoutMs ?? 300;
  const queue = await db
    .queue()
    .consumer("buffer_queue", { visibilityTimeoutMs, maxReceives: opts.maxReceives ?? 3 });
  return runSinkLoop(
    {
      queue,
      data: db.sql,
      store,
      maxBatchBytes: 64 * 1024 * 1024,
      visibilityTimeoutMs,
      log: quiet,
      metrics: newSinkMetrics(),
    },
    {
      concurrency: opts.concurrency ?? 4,
      untilIdle: true,
      idleMs: 100,
      stop: new AbortController().signal,
    },
  );
}

export async function rowCount(sql: Sql, where: { taskId?: string } = {}): Promise<number> {
  const [row] =
    where.taskId === undefined
      ? await sql`SELECT count(*)::int AS n FROM data.alert_events`
      : await sql`SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ${where.taskId}`;
  return Number(row?.n ?? -1);
}

export async function deadLetterOf(
  sql: Sql,
  messageId: string,
): Promise<string | null | undefined> {
  const [row] = await sql`
    SELECT last_error FROM state.queue_messages
    WHERE id = ${messageId}::bigint AND queue_name = 'buffer_queue.dlq'`;
  return row === undefined ? undefined : row.last_error === null ? null : String(row.last_error);
}

/**
 * Runs `work` while the database refuses every `data.alert_events` row with
 * dedupe key `key`, with SQLSTATE `sqlstate` (a trigger, dropped after):
 * a refusal that no validation can foresee.
 */
export async function whileRefused<T>(
  sql: Sql,
  refused: { key: string; sqlstate: string },
  work: () => Promise<T>,
): Promise<T> {
  const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;
  await sql`
    CREATE FUNCTION data.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.dedupe_key = TG_ARGV[0] THEN
        RAISE EXCEPTION 'refused by the test' USING ERRCODE = TG_ARGV[1];
      END IF;
      RETURN NEW;
    END $$`;
  try {
    await sql.unsafe(
      `CREATE TRIGGER test_refuse BEFORE INSERT ON data.alert_events FOR EACH ROW
       EXECUTE FUNCTION data.test_refuse(${literal(refused.key)}, ${literal(refused.sqlstate)})`,
    );
    return await work();
  } finally {
    await sql`DROP TRIGGER IF EXISTS test_refuse ON data.alert_events`;
    await sql`DROP FUNCTION data.test_refuse()`;
  }
}
