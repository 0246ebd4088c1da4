import { describe, expect, test } from "bun:test";
import { SINK_LOG } from "../../src/sink/logs";
import { useFreshDatabase } from "../support/db";
import { runHarness, spawnHarness } from "../support/processes";
import {
  alert,
  clearBeforeEach,
  goodLines,
  jsonl,
  publishBatchMessage,
  putBatch,
  rowCount,
  useTempStore,
} from "./helpers";

const db = useFreshDatabase();
const store = useTempStore();
clearBeforeEach(() => db().sql);

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db().url,
    OBJECT_STORE_URL: store().url,
    VISIBILITY_TIMEOUT_MS: "1000",
    MAX_RECEIVES: "5",
    ...extra,
  };
}

describe("harness sink (real process)", () => {
  test("--until-idle ingests, dead-letters poison, logs each batch and prints a summary", async () => {
    const sql = db().sql;
    const b = await putBatch(store().store, jsonl(goodLines("acme", "p", 1000)));
    await publishBatchMessage(db().queue(), b);
    await publishBatchMessage(db().queue(), b); // a duplicate buffer message
    const poison = await putBatch(store().store, jsonl([alert("acme", "x", { severity: "bad" })]));
    await publishBatchMessage(db().queue(), poison);
    const r = await runHarness(
      ["sink", "--until-idle", "--idle-ms", "200", "--concurrency", "2"],
      env(),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^sink: 2 batches, 1000 rows inserted, 1000 rows skipped as duplicates, 1 dead letters, 0 retries/,
    );
    const logs = r.stderr.split("\n").filter((l) => l.startsWith("{"));
    const ingested = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === SINK_LOG.ingested);
    expect(ingested).toHaveLength(2);
    expect(ingested[0]).toMatchObject({ component: "sink", task_id: b.taskId, attempt: 1 });
    expect(Object.keys(ingested[0])).toEqual(
      expect.arrayContaining([
        "message_id",
        "rows_inserted",
        "rows_skipped",
        "ms",
        "receive_count",
      ]),
    );
    expect(r.stderr).toContain(`"msg":"${SINK_LOG.deadLettered}"`);
    expect(await rowCount(sql)).toBe(1000);
  }, 30_000);

  test("SIGTERM while a batch is in hand: it is finished and acked, then exit 0", async () => {
    const sql = db().sql;
    const sink = spawnHarness("sink", ["sink"], env({ LOG_LEVEL: "debug" }));
    await sink.waitForLog((l) => l.msg === SINK_LOG.started, "start");
    const b = await putBatch(store().store, jsonl(goodLines("acme", "t", 20_000)));
    await publishBatchMessage(db().queue(), b);
    await sink.waitForLog((l) => l.msg === SINK_LOG.received, "the batch in hand");
    expect(await sink.stop("SIGTERM")).toBe(0);
    expect(await rowCount(sql)).toBe(20_000);
    expect(await sql`SELECT 1 FROM state.queue_messages`).toHaveLength(0);
    expect(sink.stdout()).toMatch(/^sink: 1 batches, 20000 rows inserted/);
    expect(sink.stderr()).toContain(`"msg":"${SINK_LOG.stopping}"`);
  }, 30_000);

  test("kill -9 between commit and ack: the batch is redelivered and adds no rows", async () => {
    const sql = db().sql;
    const b = await putBatch(store().store, jsonl(goodLines("acme", "f", 1000)));
    const id = await publishBatchMessage(db().queue(), b);
    const doomed = spawnHarness(
      "sink-doomed",
      ["sink"],
      env({ HARNESS_FAILPOINTS: "sink.after_commit" }),
    );
    await doomed.exited;
    expect(doomed.proc.signalCode).toBe("SIGKILL");
    expect(await rowCount(sql)).toBe(1000);
    const [pending] =
      await sql`SELECT receive_count FROM state.queue_messages WHERE id = ${id}::bigint`;
    expect(pending?.receive_count).toBe(1); // committed but never acked

    const r = await runHarness(["sink", "--until-idle", "--idle-ms", "200"], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sink: 1 batches, 0 rows inserted, 1000 rows skipped as duplicates/);
    expect(await rowCount(sql)).toBe(1000);
    expect(await sql`SELECT 1 FROM state.queue_messages`).toHaveLength(0);
    const batches =
      await sql`SELECT rows_inserted, rows_skipped FROM data.sink_batches ORDER BY id`;
    expect(batches.map((x) => [x.rows_inserted, x.rows_skipped])).toEqual([
      [1000, 0],
      [0, 1000],
    ]);
  }, 30_000);

  test("a bad flag or a missing setting ends with one line and exit 2", async () => {
    const bad = await runHarness(["sink", "--concurrency", "0"], env());
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("harness sink: --concurrency must be between 1 and 256");
    const noStore = await runHarness(["sink"], { DATABASE_URL: db().url });
    expect(noStore.code).toBe(2);
    expect(noStore.stderr).toContain("OBJECT_STORE_URL is not set");
  }, 20_000);
});
