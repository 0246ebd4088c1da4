import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, describeUrl, type Sql } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";
import { SINK_LOG } from "../../src/sink/logs";
import { useFreshDatabase } from "../support/db";
import { type EmbeddedServer, startEmbeddedServer } from "../support/embedded";
import { runHarness, spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";
import {
  goodLines,
  jsonl,
  publishBatchMessage,
  putBatch,
  type TempStore,
  tempStore,
} from "./helpers";

/**
 * The DATA database on a second PostgreSQL that the test stops and restarts:
 * batches are retried through the visibility timeout, nothing is lost, and a
 * batch that keeps failing is dead-lettered after MAX_RECEIVES.
 */

const state = useFreshDatabase();
let store: TempStore;
let dataServer: EmbeddedServer;
let data: Sql;

beforeAll(async () => {
  store = await tempStore();
  dataServer = await startEmbeddedServer();
  const admin = connect(dataServer.url(), { name: "test-admin", max: 1 });
  await admin`CREATE DATABASE sinkdata`;
  await admin.end();
  data = connect(dataServer.url("sinkdata"), { name: "test-data", max: 2 });
  await migrateDatabase(data, "data");
}, 60_000);

afterAll(async () => {
  await data?.end({ timeout: 1 });
  await dataServer?.destroy();
  store?.remove();
});

function sinkEnv(maxReceives: number): Record<string, string> {
  return {
    STATE_DATABASE_URL: state().url,
    DATA_DATABASE_URL: dataServer.url("sinkdata"),
    OBJECT_STORE_URL: store.url,
    VISIBILITY_TIMEOUT_MS: "300",
    MAX_RECEIVES: String(maxReceives),
  };
}

async function alertRows(taskId: string): Promise<number> {
  const [r] =
    await data`SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ${taskId}`;
  return Number(r?.n);
}

describe("DATA database unreachable", () => {
  test("a batch is retried while it is down and ingested once it is back", async () => {
    const sink = spawnHarness("sink", ["sink"], sinkEnv(1000));
    await sink.waitForLog((l) => l.msg === SINK_LOG.started, "start");
    await dataServer.stop();
    const b = await putBatch(store.store, jsonl(goodLines("acme", "outage", 1000)));
    const id = await publishBatchMessage(state().queue(), b);
    const failing = await waitFor(
      async () => {
        const [m] = await state().sql`
          SELECT receive_count, last_error FROM state.queue_messages WHERE id = ${id}::bigint`;
        return m !== undefined && Number(m.receive_count) >= 3 ? m : undefined;
      },
      { what: "three failed deliveries", timeoutMs: 20_000 },
    );
    expect(String(failing.last_error)).toMatch(/^writing the batch: /);
    expect(failing).toBeDefined();
    await dataServer.start();
    await waitFor(async () => (await alertRows(b.taskId)) === 1000, {
      what: "the rows once the database is back",
      timeoutMs: 20_000,
    });
    await waitFor(
      async () => (await state().sql`SELECT 1 FROM state.queue_messages`).length === 0,
      { what: "the message to be acked" },
    );
    expect(await sink.stop()).toBe(0);
    expect(sink.stdout()).toMatch(/^sink: 1 batches, 1000 rows inserted, 0 rows skipped/);
  }, 60_000);

  test("a batch that keeps failing is dead-lettered after MAX_RECEIVES, with zero rows", async () => {
    const sink = spawnHarness("sink", ["sink"], sinkEnv(3));
    await sink.waitForLog((l) => l.msg === SINK_LOG.started, "start");
    await dataServer.stop();
    const b = await putBatch(store.store, jsonl(goodLines("acme", "dead", 100)));
    const id = await publishBatchMessage(state().queue(), b);
    const dead = await waitFor(
      async () => {
        const [m] = await state().sql`
          SELECT receive_count, last_error FROM state.queue_messages
          WHERE id = ${id}::bigint AND queue_name = 'buffer_queue.dlq'`;
        return m;
      },
      { what: "the dead letter", timeoutMs: 20_000 },
    );
    expect(dead.receive_count).toBe(3);
    expect(String(dead.last_error)).toMatch(
      /^writing the batch: .*\(dead-lettered after 3 receives\)$/,
    );
    await dataServer.start();
    expect(await alertRows(b.taskId)).toBe(0);
    expect(await sink.stop()).toBe(0);
  }, 60_000);

  test("--until-idle gives up once it stayed down for --give-up-ms: exit 1, one line naming it", async () => {
    await dataServer.stop();
    try {
      const b = await putBatch(store.store, jsonl(goodLines("acme", "gone", 10)));
      const id = await publishBatchMessage(state().queue(), b);
      const r = await runHarness(["sink", "--until-idle", "--give-up-ms", "1500"], sinkEnv(1000));
      expect(r.code).toBe(1);
      const last = r.stderr.trimEnd().split("\n").at(-1) ?? "";
      expect(last).toStartWith(
        `harness sink: the data database at ${describeUrl(dataServer.url("sinkdata"))} stayed unavailable for `,
      );
      const [m] = await state().sql`
        SELECT queue_name FROM state.queue_messages WHERE id = ${id}::bigint`;
      expect(m?.queue_name).toBe("buffer_queue");
    } finally {
      await dataServer.start();
    }
  }, 60_000);
});
