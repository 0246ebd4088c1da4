import { afterAll, beforeAll, expect, test } from "bun:test";
import * as v from "valibot";
import { AlertLine } from "../../src/contracts/alert";
import { openObjectStore } from "../../src/objectstore/index";
import { dedupeKey } from "../../src/worker/alerts";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_INTERNAL_TOKEN, type TestDispatcher } from "../support/dispatcher";
import { type S3rver, startS3rver } from "../support/s3rver";
import {
  bufferMessages,
  createTasks,
  outcomes,
  startWorker,
  taskRow,
  waitForWakeups,
} from "./helpers";

/** The whole worker path with the batch in S3 (s3rver on loopback). */

const db = useFreshDatabase();
let s3: S3rver | undefined;
let dispatcher: TestDispatcher | undefined;
let env: Record<string, string> = {};

beforeAll(async () => {
  s3 = await startS3rver();
  const common = {
    DATABASE_URL: db().url,
    INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
    ...s3.env("batches"),
  };
  dispatcher = await startDispatcher({ databaseUrl: db().url, env: common });
  env = { ...common, DISPATCHER_URL: dispatcher.url };
}, 30_000);

afterAll(async () => {
  await dispatcher?.stop();
  await s3?.stop();
});

test("a worker on s3:// writes the batch to the bucket and publishes its s3 URI", async () => {
  const ids = await createTasks(env, "acme", ["--alerts", "25", "--count", "3"]);
  await waitForWakeups(db().sql, ids);
  const worker = startWorker(env, ["--until-idle", "--concurrency", "3"]);
  expect(await worker.exited).toBe(0);
  expect(outcomes(worker)).toEqual(["succeeded", "succeeded", "succeeded"]);
  const server = s3;
  if (server === undefined) throw new Error("no s3rver");
  const store = await openObjectStore(server.url("batches"), {
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    region: server.region,
  });
  for (const id of ids) {
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded", attempt: 1 });
    const [m, ...more] = await bufferMessages(db().sql, id);
    expect(more).toHaveLength(0);
    if (m === undefined) throw new Error(`no buffer message for ${id}`);
    const key = store.keyOf(m.batch_uri, `acme/${id}`);
    expect(m.batch_uri.startsWith(`s3://${server.bucket}/batches/acme/${id}/1-`)).toBe(true);
    if (key === undefined) throw new Error(`${m.batch_uri} is not under the store`);
    expect((await store.stat(key))?.size).toBe(m.batch_size_bytes);
    const text = await store.getText(key, { maxBytes: m.batch_size_bytes });
    const lines = text
      .trimEnd()
      .split("\n")
      .map((l) => v.parse(AlertLine, JSON.parse(l)));
    expect(lines.map((l) => l.dedupe_key)).toEqual(
      Array.from({ length: 25 }, (_, i) => dedupeKey(id, i)),
    );
  }
}, 60_000);
