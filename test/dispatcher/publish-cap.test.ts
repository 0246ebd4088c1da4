import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ClaimResponse } from "../../src/contracts/http";
import { connect, type Sql } from "../../src/db/connect";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { expireLease, type InProcess, inProcess, STORE, snapshot } from "./_inprocess";

/** buffer-publish: one outbox row per batch of an attempt, and at most MAX_BATCHES_PER_ATTEMPT batches. */

const db = useFreshDatabase();
const MAX = 3;
let api: InProcess;
// A pool as wide as the races below, so every call of a race is in flight at once.
let wide: Sql;

beforeAll(async () => {
  wide = connect(db().url, { name: "test-wide", max: 10 });
  api = await inProcess(wide, { maxBatchesPerAttempt: MAX });
});
afterAll(async () => {
  await wide?.end({ timeout: 1 });
});

const publish = (c: ClaimResponse, name: string) =>
  api.post(
    "/v1/task/buffer-publish",
    {
      task_id: c.task_id,
      attempt: c.attempt,
      lease_token: c.lease_token,
      batch_uri: `${STORE}/${c.org_id}/${c.task_id}/${name}.jsonl`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    },
    c.capability_token,
  );

async function batchRows(taskId: string) {
  const { outbox } = await snapshot(db().sql, taskId);
  return outbox
    .filter((o) => o.queue_name === "buffer_queue")
    .map((o) => [o.attempt, String(o.payload.batch_uri).split("/").pop()]);
}

describe("buffer-publish idempotence and cap", () => {
  test("the same batch twice → 202 both times, one outbox row", async () => {
    const c = await api.claim(await newTask(db().sql));
    expect((await publish(c, "x")).status).toBe(202);
    const before = await snapshot(db().sql, c.task_id);
    const again = await publish(c, "x");
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ accepted: true });
    expect(await batchRows(c.task_id)).toEqual([[1, "x.jsonl"]]);
    expect((await snapshot(db().sql, c.task_id)).outbox).toEqual(before.outbox);
  });

  test(`${MAX} batches → 202; one more → 422 too_many_batches and no row; a repeat after the cap → 202`, async () => {
    const c = await api.claim(await newTask(db().sql));
    for (const name of ["a", "b", "c"]) expect((await publish(c, name)).status).toBe(202);
    const over = await publish(c, "d");
    expect(over.status).toBe(422);
    expect(await over.json()).toMatchObject({ error: "too_many_batches" });
    expect((await publish(c, "e")).status).toBe(422);
    expect((await publish(c, "a")).status).toBe(202);
    expect(await batchRows(c.task_id)).toEqual([
      [1, "a.jsonl"],
      [1, "b.jsonl"],
      [1, "c.jsonl"],
    ]);
  });

  test("the count is per attempt: a new attempt may publish again, even the same names", async () => {
    const id = await newTask(db().sql);
    const first = await api.claim(id);
    for (const name of ["a", "b", "c"]) expect((await publish(first, name)).status).toBe(202);
    await expireLease(db().sql, id);
    const second = await api.claim(id);
    for (const name of ["a", "b", "c"]) expect((await publish(second, name)).status).toBe(202);
    expect((await publish(second, "d")).status).toBe(422);
    expect(await batchRows(id)).toHaveLength(6);
  });

  test("concurrent publishes: ten distinct batches → exactly MAX rows; ten of one batch → one row", async () => {
    for (let round = 0; round < 5; round++) {
      const c = await api.claim(await newTask(db().sql));
      const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
      const codes = (await Promise.all(names.map((n) => publish(c, n)))).map((r) => r.status);
      expect(codes.filter((s) => s === 202)).toHaveLength(MAX);
      expect(codes.filter((s) => s === 422)).toHaveLength(10 - MAX);
      expect(await batchRows(c.task_id)).toHaveLength(MAX);

      const d = await api.claim(await newTask(db().sql));
      const same = await Promise.all(Array.from({ length: 10 }, () => publish(d, "same")));
      expect(same.map((r) => r.status)).toEqual(Array(10).fill(202));
      expect(await batchRows(d.task_id)).toEqual([[1, "same.jsonl"]]);
    }
  });

  test("an invalid batch from a stale attempt is 409, not 422: the fence comes first", async () => {
    const id = await newTask(db().sql);
    const c = await api.claim(id);
    await expireLease(db().sql, id);
    const res = await publish(c, "../escape");
    expect(res.status).toBe(409);
    const live = await api.claim(id);
    expect((await publish(live, "../escape")).status).toBe(422);
  });
});
