import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { HeartbeatResponse } from "../../src/contracts/http";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_OBJECT_STORE_URL, type TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";
import {
  batchOf,
  call,
  claim,
  claimRaw,
  drained,
  fence,
  footprint,
  Jwks,
  messagesFor,
  newTask,
} from "./_client";

// The task API's happy paths and its refusals of bad input, over real HTTP.
const db = useFreshDatabase();
let d: TestDispatcher;

beforeAll(async () => {
  d = await startDispatcher({ databaseUrl: db().url, env: { MAX_BATCH_BYTES: "1000" } });
});
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});

describe("task calls", () => {
  test("heartbeat extends lease_expires_at", async () => {
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    const [before] = await db().sql`SELECT lease_expires_at FROM state.tasks WHERE id = ${id}`;
    await waitFor(
      async () => {
        const [r] = await db()
          .sql`SELECT now() > ${before?.lease_expires_at} - interval '29990 milliseconds' AS later`;
        return r?.later === true;
      },
      { what: "the database clock to move" },
    );
    const res = await call(d, "heartbeat", c.capability_token, fence(c));
    expect(res.status).toBe(200);
    const body = v.parse(HeartbeatResponse, await res.json());
    const [after] = await db().sql`SELECT lease_expires_at FROM state.tasks WHERE id = ${id}`;
    expect(after?.lease_expires_at.getTime()).toBeGreaterThan(before?.lease_expires_at.getTime());
    expect(Date.parse(body.lease_expires_at)).toBe(after?.lease_expires_at.getTime());
  });

  test("buffer-publish → 202 and exactly one buffer_queue message with org and task from the task row", async () => {
    const id = await newTask(db().sql, "org-b");
    const c = await claim(d, id);
    const res = await call(
      d,
      "buffer-publish",
      c.capability_token,
      batchOf(c, TEST_OBJECT_STORE_URL),
    );
    expect(res.status).toBe(202);
    const messages = await waitFor(
      async () => {
        const m = await messagesFor(db().sql, "buffer_queue", id);
        return m.length > 0 ? m : undefined;
      },
      { what: "the buffer_queue message" },
    );
    await drained(db().sql);
    expect(await messagesFor(db().sql, "buffer_queue", id)).toHaveLength(1);
    expect(messages[0]?.payload).toEqual({
      task_id: id,
      org_id: "org-b",
      attempt: 1,
      batch_uri: `${TEST_OBJECT_STORE_URL}/org-b/${id}/1-a.jsonl`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 123,
    });
    const [row] = await db()
      .sql`SELECT task_id::text AS task_id, attempt FROM state.outbox WHERE queue_name = 'buffer_queue' AND task_id = ${id}`;
    expect(row).toEqual({ task_id: id, attempt: 1 });
  });

  test("a wakeup reaches task_wakeup within tens of milliseconds of task creation", async () => {
    const started = performance.now();
    const id = await newTask(db().sql);
    await waitFor(async () => (await messagesFor(db().sql, "task_wakeup", id)).length === 1, {
      what: "the wakeup",
      intervalMs: 5,
    });
    expect(performance.now() - started).toBeLessThan(500);
  });

  test("complete twice → 200 both and one task_completed message; a repeat after success still 200", async () => {
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    const one = await call(d, "complete", c.capability_token, fence(c));
    const two = await call(d, "complete", c.capability_token, fence(c));
    expect([one.status, two.status]).toEqual([200, 200]);
    expect(await two.json()).toEqual({ task_id: id, attempt: 1, status: "succeeded" });
    await drained(db().sql);
    expect(await messagesFor(db().sql, "task_completed", id)).toHaveLength(1);
    const [row] = await db().sql`SELECT status FROM state.tasks WHERE id = ${id}`;
    expect(row?.status).toBe("succeeded");
    // after success, the other calls of the same attempt are stale
    expect((await call(d, "heartbeat", c.capability_token, fence(c))).status).toBe(409);
    expect((await call(d, "complete", c.capability_token, fence(c))).status).toBe(200);
  });
});

describe("bad input: 400 / 405 / 413 / 422, never 500, nothing changed", () => {
  test("internal claim without a bearer or with a wrong one → 401", async () => {
    const id = await newTask(db().sql);
    const none = await fetch(`${d.url}/internal/task-claim`, {
      method: "POST",
      body: JSON.stringify({ task_id: id }),
    });
    expect(none.status).toBe(401);
    expect((await claimRaw(d, id, "wrong-token-wrong-token")).status).toBe(401);
    expect((await claimRaw(d, id, `${d.internalToken}x`)).status).toBe(401);
    const [row] = await db().sql`SELECT status FROM state.tasks WHERE id = ${id}`;
    expect(row?.status).toBe("queued");
  });

  test("malformed JSON, unknown field, wrong types, a 10 MB body", async () => {
    const id = await newTask(db().sql);
    const c = await claim(d, id);
    const before = await footprint(db().sql, id);
    const cases: Array<[unknown, number]> = [
      ["{not json", 400],
      ["", 400],
      [{ ...fence(c), extra: 1 }, 400],
      [{ ...fence(c), attempt: "1" }, 400],
      [{ ...fence(c), lease_token: 42 }, 400],
      [{ task_id: c.task_id }, 400],
      [[], 400],
      ["x".repeat(10 * 1024 * 1024), 413],
    ];
    for (const [body, status] of cases) {
      for (const endpoint of ["heartbeat", "buffer-publish", "complete"] as const) {
        const res = await call(d, endpoint, c.capability_token, body);
        expect(res.status, `${endpoint} ${String(body).slice(0, 40)}`).toBe(status);
      }
    }
    const claimBad = await fetch(`${d.url}/internal/task-claim`, {
      method: "POST",
      headers: { authorization: `Bearer ${d.internalToken}` },
      body: JSON.stringify({ task_id: "not-a-uuid" }),
    });
    expect(claimBad.status).toBe(400);
    expect(await claimBad.json()).toMatchObject({ error: "invalid_body" });
    expect(await footprint(db().sql, id)).toEqual(before);
  }, 20_000);

  test("a batch_uri of another task, file:///etc/passwd, with '..' or encoded tricks, a bad content type or size → 422", async () => {
    const id = await newTask(db().sql);
    const other = await newTask(db().sql);
    const c = await claim(d, id);
    const base = `${TEST_OBJECT_STORE_URL}/acme/${id}`;
    const good = batchOf(c, TEST_OBJECT_STORE_URL);
    const before = await footprint(db().sql, id);
    const bad = [
      { ...good, batch_uri: `${TEST_OBJECT_STORE_URL}/acme/${other}/1-a.jsonl` },
      { ...good, batch_uri: `${TEST_OBJECT_STORE_URL}/other-org/${id}/1-a.jsonl` },
      { ...good, batch_uri: "file:///etc/passwd" },
      { ...good, batch_uri: `${base}/../${other}/1-a.jsonl` },
      { ...good, batch_uri: `${base}/%2e%2e/x.jsonl` },
      { ...good, batch_uri: `${base}/sub/../1-a.jsonl` },
      { ...good, batch_uri: `${base}/` },
      { ...good, batch_uri: `s3://bucket/acme/${id}/1-a.jsonl` },
      { ...good, batch_uri: `${base}/1-a.jsonl?x=1` },
      { ...good, content_type: "application/json" },
      { ...good, batch_size_bytes: 0 },
      { ...good, batch_size_bytes: 1001 },
    ];
    for (const body of bad) {
      const res = await call(d, "buffer-publish", c.capability_token, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(await res.json()).toMatchObject({ error: "invalid_batch" });
    }
    await drained(db().sql);
    expect(await footprint(db().sql, id)).toEqual(before);
  });

  test("a wrong method → 405, an unknown path → 404, JSON errors", async () => {
    const get = await fetch(`${d.url}/v1/task/heartbeat`);
    expect(get.status).toBe(405);
    expect(await get.json()).toMatchObject({ error: "method_not_allowed" });
    const post = await fetch(`${d.url}/healthz`, { method: "POST" });
    expect(post.status).toBe(405);
    const missing = await fetch(`${d.url}/v1/task/nope`, { method: "POST" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "not_found" });
  });

  test("/healthz, /readyz, /metrics and the JWKS answer", async () => {
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${d.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    for (const name of [
      'harness_dispatcher_claims_total{outcome="claimed"}',
      'harness_dispatcher_refusals_total{endpoint="buffer-publish",reason="invalid_batch"}',
      "harness_dispatcher_outbox_backlog ",
      'harness_dispatcher_outbox_published_total{queue="task_wakeup"}',
      "harness_dispatcher_request_duration_seconds_bucket{",
    ]) {
      expect(metrics).toContain(name);
    }
    const jwks = v.parse(Jwks, await (await fetch(`${d.url}/.well-known/jwks.json`)).json());
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(jwks.keys[0]?.d).toBeUndefined();
  });
});
