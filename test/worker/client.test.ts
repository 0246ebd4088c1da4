import { afterAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { CAPABILITY_HEADER } from "../../src/contracts/capability";
import {
  BacklogResponse,
  BufferPublishRequest,
  ClaimRequest,
  CompleteRequest,
  HeartbeatRequest,
} from "../../src/contracts/http";
import { GiveUp } from "../../src/give-up";
import { createLogger, setLogLevel } from "../../src/log";
import {
  DispatcherClient,
  DispatcherContractError,
  RequestAbortedError,
} from "../../src/worker/client";
import { freePort } from "../support/embedded";

/**
 * The client's HTTP behaviour (retries, parsing, headers) against a scripted
 * in-process server. The worker's real-process tests use the real dispatcher.
 */

type Script = (req: Request, body: unknown) => Response;
let script: Script = () => new Response(null, { status: 500 });
const seen: Array<{ method: string; path: string; headers: Headers; body: unknown }> = [];

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const body: unknown = req.method === "POST" ? await req.json() : undefined;
    seen.push({ method: req.method, path: new URL(req.url).pathname, headers: req.headers, body });
    return script(req, body);
  },
});
afterAll(() => server.stop(true));

const json = (status: number, body: unknown) => Response.json(body, { status });
setLogLevel("error");
const log = createLogger("test");
const fast = { baseMs: 1, capMs: 5 };
const client = new DispatcherClient({
  baseUrl: `http://127.0.0.1:${server.port}`,
  internalToken: "internal-token-0123456789",
  log,
  backoff: fast,
});
const never = new AbortController().signal;
const lease = {
  task_id: randomUUID(),
  attempt: 2,
  lease_token: randomUUID(),
  capability_token: "cap.jwt.token",
};
const claimBody = {
  task_id: lease.task_id,
  org_id: "acme",
  attempt: 2,
  lease_token: lease.lease_token,
  lease_expires_at: new Date().toISOString(),
  capability_token: "cap.jwt.token",
  payload: { alerts: 3 },
};

describe("dispatcher client", () => {
  test("sends each request in its contract shape with its credentials", async () => {
    seen.length = 0;
    script = (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/internal/task-claim") return json(200, claimBody);
      if (path === "/v1/task/heartbeat")
        return json(200, { lease_expires_at: new Date().toISOString() });
      if (path === "/v1/task/buffer-publish")
        return json(202, { accepted: true, batch_uri: "file:///x" });
      return json(200, { task_id: lease.task_id, attempt: 2, status: "succeeded" });
    };
    expect((await client.claim(lease.task_id, never)).ok).toBe(true);
    expect((await client.heartbeat(lease, never)).ok).toBe(true);
    const batch = {
      batch_uri: "file:///x",
      content_type: "application/x-ndjson",
      batch_size_bytes: 9,
    };
    expect((await client.bufferPublish(lease, batch, never)).ok).toBe(true);
    expect((await client.complete(lease, never)).ok).toBe(true);
    expect((await client.complete(lease, never, batch)).ok).toBe(true);
    const [claim, heartbeat, publish, complete, completeWithBatch] = seen;
    expect(v.is(ClaimRequest, claim?.body)).toBe(true);
    expect(claim?.headers.get("authorization")).toBe("Bearer internal-token-0123456789");
    expect(v.is(HeartbeatRequest, heartbeat?.body)).toBe(true);
    expect(v.is(BufferPublishRequest, publish?.body)).toBe(true);
    expect(v.is(CompleteRequest, complete?.body)).toBe(true);
    expect(complete?.body).toEqual({
      task_id: lease.task_id,
      attempt: 2,
      lease_token: lease.lease_token,
    });
    expect(completeWithBatch?.path).toBe("/v1/task/complete");
    expect(v.is(CompleteRequest, completeWithBatch?.body)).toBe(true);
    expect(completeWithBatch?.body).toEqual({
      task_id: lease.task_id,
      attempt: 2,
      lease_token: lease.lease_token,
      batch,
    });
    for (const r of [heartbeat, publish, complete, completeWithBatch]) {
      expect(r?.headers.get(CAPABILITY_HEADER)).toBe("cap.jwt.token");
      expect(r?.headers.get("authorization")).toBeNull();
    }
  });

  test("503 and 429 are retried until an answer comes", async () => {
    seen.length = 0;
    let n = 0;
    script = () => {
      n += 1;
      if (n === 1) return json(503, { error: "unavailable", message: "db down" });
      if (n === 2) return new Response("slow down", { status: 429 });
      return json(200, claimBody);
    };
    const reply = await client.claim(lease.task_id, never);
    expect(reply.ok).toBe(true);
    expect(seen).toHaveLength(3);
  });

  test("refusals come back with their error code; odd bodies get http_<status>", async () => {
    script = () => json(409, { error: "stale_lease", message: "fenced" });
    expect(await client.heartbeat(lease, never)).toEqual({
      ok: false,
      status: 409,
      error: "stale_lease",
      message: "fenced",
    });
    script = () => new Response("<html>nope</html>", { status: 400 });
    const reply = await client.complete(lease, never);
    expect(reply).toMatchObject({ ok: false, status: 400, error: "http_400" });
  });

  test("a persistent 500 is retried a few times, then returned", async () => {
    seen.length = 0;
    script = () => json(500, { error: "internal", message: "internal error" });
    const reply = await client.claim(lease.task_id, never);
    expect(reply).toMatchObject({ ok: false, status: 500, error: "internal" });
    expect(seen).toHaveLength(5);
  });

  test("a 2xx body that breaks its contract is an error, not a success", async () => {
    script = () => json(200, { ...claimBody, extra: 1 });
    await expect(client.claim(lease.task_id, never)).rejects.toBeInstanceOf(
      DispatcherContractError,
    );
  });

  test("an unreachable dispatcher is retried until the signal aborts", async () => {
    const closed = new DispatcherClient({
      baseUrl: `http://127.0.0.1:${await freePort()}`,
      internalToken: "internal-token-0123456789",
      log,
      backoff: fast,
    });
    const started = Date.now();
    await expect(closed.claim(lease.task_id, AbortSignal.timeout(300))).rejects.toBeInstanceOf(
      RequestAbortedError,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test("a dispatcher that does not answer in time is retried", async () => {
    let n = 0;
    const slow = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch() {
        n += 1;
        if (n === 1) await Bun.sleep(500);
        return json(200, claimBody);
      },
    });
    try {
      const c = new DispatcherClient({
        baseUrl: `http://127.0.0.1:${slow.port}`,
        internalToken: "internal-token-0123456789",
        log,
        backoff: fast,
        requestTimeoutMs: 100,
      });
      expect((await c.claim(lease.task_id, never)).ok).toBe(true);
      expect(n).toBeGreaterThanOrEqual(2);
    } finally {
      slow.stop(true);
    }
  });

  test("backlog is a GET with the internal token, its answer parsed with its contract", async () => {
    seen.length = 0;
    const counts = { outbox_pending: 2, tasks_queued: 1, tasks_running: 0 };
    script = () => json(200, counts);
    expect(await client.backlog(never)).toEqual({ ok: true, status: 200, body: counts });
    expect(seen).toMatchObject([{ method: "GET", path: "/internal/backlog", body: undefined }]);
    expect(seen[0]?.headers.get("authorization")).toBe("Bearer internal-token-0123456789");
    expect(v.is(BacklogResponse, counts)).toBe(true);
    script = () => json(200, { ...counts, tasks_running: -1 });
    await expect(client.backlog(never)).rejects.toBeInstanceOf(DispatcherContractError);
  });

  test("a refusal's Retry-After (delta-seconds) comes back in ms; an HTTP date is ignored", async () => {
    const refusal = { error: "retry_pending", message: "the task's retry is due later" };
    script = () => Response.json(refusal, { status: 409, headers: { "Retry-After": "7" } });
    expect(await client.claim(lease.task_id, never)).toEqual({
      ok: false,
      status: 409,
      ...refusal,
      retryAfterMs: 7_000,
    });
    const date = "Wed, 21 Oct 2099 07:28:00 GMT";
    script = () => Response.json(refusal, { status: 409, headers: { "Retry-After": date } });
    expect(await client.claim(lease.task_id, never)).not.toHaveProperty("retryAfterMs");
  });

  test("each failure is an outage of the dispatcher for GiveUp, which names DISPATCHER_URL", async () => {
    const giveUp = new GiveUp(200);
    const baseUrl = `http://127.0.0.1:${await freePort()}`;
    const closed = new DispatcherClient({
      baseUrl,
      internalToken: "internal-token-0123456789",
      log,
      backoff: fast,
      giveUp,
    });
    await expect(closed.backlog(giveUp.signal)).rejects.toBeInstanceOf(RequestAbortedError);
    expect(giveUp.reason?.message).toStartWith(
      `the dispatcher at ${baseUrl} (DISPATCHER_URL) stayed unavailable for `,
    );
    // An answer ends the outage: the same client against a live dispatcher reports it back.
    const live = new GiveUp(200);
    const c = new DispatcherClient({
      baseUrl: `http://127.0.0.1:${server.port}`,
      internalToken: "internal-token-0123456789",
      log,
      backoff: fast,
      giveUp: live,
    });
    live.down(c.dependency, new Error("earlier"));
    script = () => json(200, { outbox_pending: 0, tasks_queued: 0, tasks_running: 0 });
    await c.backlog(never);
    expect(live.up(c.dependency)).toBeUndefined();
  });
});
