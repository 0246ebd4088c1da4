import { afterEach, describe, expect, test } from "bun:test";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONTRACTS } from "../../src/contracts/registry";
import { CONTRACTS_DIR, ConformanceChecker, conformanceProxy } from "../support/conformance";

const TASK = "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f";
const LEASE = "5f2d1c3b-7e8a-4b9c-8d0e-1f2a3b4c5d6e";
const AT = "2025-06-01T12:00:00Z";

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
function token(header: unknown, claims: unknown): string {
  return `${b64(header)}.${b64(claims)}.c2lnbmF0dXJl`;
}
const goodHeader = { alg: "EdDSA", typ: "harness-capability+jwt", kid: "k1" };
const goodClaims = {
  iss: "harness-dispatcher",
  aud: "harness-task-api",
  sub: TASK,
  iat: 1,
  nbf: 1,
  exp: 61,
  jti: LEASE,
  org_id: "acme",
  task_id: TASK,
  attempt: 1,
  scope: "task:heartbeat",
};
const claimBody = (capability_token: string) => ({
  task_id: TASK,
  org_id: "acme",
  attempt: 1,
  lease_token: LEASE,
  lease_expires_at: AT,
  capability_token,
  payload: { alerts: 2 },
});

const fresh = () => ConformanceChecker.load();

describe("conformance checker", () => {
  test("loads every contract from the committed index", async () => {
    const c = await fresh();
    expect(c.contractNames.sort()).toEqual(CONTRACTS.map((x) => x.name).sort());
  });

  test("a conforming claim response passes, and its capability token's header and claims are checked", async () => {
    const c = await fresh();
    const ok = c.checkHttpResponse({
      method: "POST",
      path: "http://127.0.0.1:8080/internal/task-claim?x=1",
      status: 200,
      body: claimBody(token(goodHeader, goodClaims)),
    });
    expect(ok).toBe(true);
    expect(c.mismatches).toEqual([]);
    expect(c.checked.get("claim_response")).toBe(1);
    expect(c.checked.get("capability_header")).toBe(1);
    expect(c.checked.get("capability_claims")).toBe(1);
    c.assertConforms();
  });

  test("a capability token with alg none or a foreign claim is a mismatch", async () => {
    const c = await fresh();
    c.checkHttpResponse({
      method: "POST",
      path: "/internal/task-claim",
      status: 200,
      body: claimBody(token({ ...goodHeader, alg: "none" }, { ...goodClaims, role: "admin" })),
    });
    expect(c.mismatches.map((m) => m.contract)).toEqual(["capability_header", "capability_claims"]);
    expect(c.report()).toContain("/alg must be equal to one of the allowed values");
    expect(c.report()).toContain("must NOT have additional properties 'role'");
    c.checkCapabilityToken("not-a-jws");
    expect(c.mismatches.at(-1)?.problems).toEqual(["not a compact JWS (3 parts)"]);
  });

  test("responses are matched by endpoint and status: error bodies, undeclared statuses, unknown endpoints", async () => {
    const c = await fresh();
    const heartbeat = "/v1/task/heartbeat";
    expect(
      c.checkHttpResponse({
        method: "POST",
        path: heartbeat,
        status: 200,
        body: { lease_expires_at: AT },
      }),
    ).toBe(true);
    expect(
      c.checkHttpResponse({
        method: "POST",
        path: heartbeat,
        status: 409,
        body: { error: "stale_lease", message: "x" },
      }),
    ).toBe(true);
    expect(c.mismatches).toEqual([]);

    expect(
      c.checkHttpResponse({
        method: "POST",
        path: heartbeat,
        status: 409,
        body: { error: "Stale" },
      }),
    ).toBe(false);
    expect(
      c.checkHttpResponse({
        method: "POST",
        path: heartbeat,
        status: 500,
        body: { error: "internal", message: "" },
      }),
    ).toBe(false);
    expect(
      c.checkHttpResponse({ method: "POST", path: "/v1/task/other", status: 200, body: {} }),
    ).toBe(false);
    expect(
      c.checkHttpResponse({
        method: "POST",
        path: "/internal/task-claim",
        status: 403,
        body: { error: "x", message: "" },
      }),
    ).toBe(false);
    expect(c.mismatches.map((m) => [m.where, m.contract, m.problems[0]])).toEqual([
      [
        "POST /v1/task/heartbeat → 409",
        "error_body",
        "(root) must have required property 'message'",
      ],
      ["POST /v1/task/heartbeat → 500", undefined, "status not in the contract"],
      ["POST /v1/task/other → 200", undefined, "no contract for this endpoint"],
      ["POST /internal/task-claim → 403", undefined, "status not in the contract"],
    ]);
    expect(() => c.assertConforms()).toThrow("4 value(s) do not conform to the exported contracts");
  });

  test("a 202 buffer-publish with an empty body does not conform", async () => {
    const c = await fresh();
    expect(
      c.checkHttpResponse({
        method: "POST",
        path: "/v1/task/buffer-publish",
        status: 202,
        body: undefined,
      }),
    ).toBe(false);
    expect(c.mismatches[0]?.contract).toBe("buffer_publish_response");
  });

  test("requests are matched by endpoint", async () => {
    const c = await fresh();
    const fence = { task_id: TASK, attempt: 1, lease_token: LEASE };
    expect(c.checkHttpRequest({ method: "POST", path: "/v1/task/complete", body: fence })).toBe(
      true,
    );
    expect(
      c.checkHttpRequest({
        method: "POST",
        path: "/v1/task/complete",
        body: { ...fence, attempt: 0 },
      }),
    ).toBe(false);
    expect(c.checkHttpRequest({ method: "GET", path: "/v1/task/complete", body: undefined })).toBe(
      false,
    );
    expect(c.mismatches.map((m) => m.problems[0])).toEqual([
      "/attempt must be >= 1",
      "no contract for this request",
    ]);
  });

  test("queue messages are matched by queue; a dead letter keeps its queue's contract", async () => {
    const c = await fresh();
    const buffer = {
      task_id: TASK,
      org_id: "acme",
      attempt: 1,
      batch_uri: "file:///s/acme/x.jsonl",
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    };
    expect(c.checkQueueMessage("task_wakeup", { task_id: TASK })).toBe(true);
    expect(c.checkQueueMessage("buffer_queue", buffer)).toBe(true);
    expect(c.checkQueueMessage("buffer_queue.dlq", buffer)).toBe(true);
    expect(
      c.checkQueueMessage("task_completed", {
        task_id: TASK,
        org_id: "acme",
        attempt: 1,
        completed_at: AT,
      }),
    ).toBe(true);
    expect(c.mismatches).toEqual([]);
    expect(
      c.checkQueueMessage("buffer_queue.dlq", { ...buffer, org_id: undefined }, "message 12"),
    ).toBe(false);
    expect(c.checkQueueMessage("mystery", {})).toBe(false);
    expect(c.mismatches.map((m) => [m.where, m.contract])).toEqual([
      ["queue buffer_queue.dlq message 12", "buffer_queue"],
      ["queue mystery message", undefined],
    ]);
  });

  test("JSONL batches are checked line by line", async () => {
    const c = await fresh();
    const line = {
      dedupe_key: "k1",
      org_id: "acme",
      source: "s",
      severity: "info",
      title: "t",
      occurred_at: AT,
    };
    const good = `${JSON.stringify(line)}\n${JSON.stringify({ ...line, dedupe_key: "k2" })}\n`;
    expect(c.checkJsonl(good)).toBe(true);
    expect(c.checked.get("alert_line")).toBe(2);
    const bad = `${JSON.stringify(line)}\n{"dedupe_key":\n${JSON.stringify({ ...line, severity: "x" })}`;
    expect(c.checkJsonl(bad, "batch b")).toBe(false);
    expect(c.mismatches.map((m) => [m.where, m.problems[0]])).toEqual([
      ["batch b line 2", "not JSON"],
      [
        "batch b line 3",
        '/severity must be equal to one of the allowed values ["info","low","medium","high","critical"]',
      ],
    ]);
  });

  test("it judges by the exported files, not by valibot: a loosened copy accepts what the code refuses", async () => {
    const dir = await mkdtemp(join(tmpdir(), "harness-conformance-"));
    try {
      await cp(CONTRACTS_DIR, dir, { recursive: true });
      const file = join(dir, "task_wakeup.schema.json");
      await writeFile(
        file,
        (await readFile(file, "utf8")).replace(
          '"additionalProperties": false',
          '"additionalProperties": true',
        ),
      );
      const loose = await ConformanceChecker.load(dir);
      const strict = await fresh();
      const value = { task_id: TASK, extra: 1 };
      expect(loose.problems("task_wakeup", value)).toEqual([]);
      expect(strict.problems("task_wakeup", value)).toEqual([
        "(root) must NOT have additional properties 'extra'",
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a contracts folder with a broken index or schema does not load", async () => {
    const dir = await mkdtemp(join(tmpdir(), "harness-conformance-"));
    try {
      await cp(CONTRACTS_DIR, dir, { recursive: true });
      await writeFile(join(dir, "error_body.schema.json"), '{"type": "objekt"}');
      await expect(ConformanceChecker.load(dir)).rejects.toThrow(
        "error_body.schema.json: does not compile",
      );
      await writeFile(join(dir, "index.json"), '{"contracts": []}');
      await expect(ConformanceChecker.load(dir)).rejects.toThrow("is not a contract index");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("conformance proxy", () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  test("forwards requests unchanged and checks each exchange", async () => {
    const seen: Array<{ path: string; auth: string | null; body: string }> = [];
    const upstream = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        seen.push({ path, auth: req.headers.get("authorization"), body: await req.text() });
        if (path === "/healthz") return new Response("ok");
        if (path === "/v1/task/heartbeat") return Response.json({ lease_expires_at: AT });
        return Response.json({ error: "stale_lease", extra: true }, { status: 409 });
      },
    });
    stops.push(() => upstream.stop(true));
    const checker = await fresh();
    const proxy = conformanceProxy(checker, `http://127.0.0.1:${upstream.port}`);
    stops.push(proxy.stop);

    const fence = { task_id: TASK, attempt: 1, lease_token: LEASE };
    const hb = await fetch(`${proxy.url}/v1/task/heartbeat`, {
      method: "POST",
      headers: { authorization: "Bearer t", "content-type": "application/json" },
      body: JSON.stringify(fence),
    });
    expect(hb.status).toBe(200);
    expect(await hb.json()).toEqual({ lease_expires_at: AT });
    const complete = await fetch(`${proxy.url}/v1/task/complete`, {
      method: "POST",
      body: JSON.stringify(fence),
    });
    expect(complete.status).toBe(409);
    expect((await fetch(`${proxy.url}/healthz`)).status).toBe(200);

    expect(seen.map((s) => s.path)).toEqual([
      "/v1/task/heartbeat",
      "/v1/task/complete",
      "/healthz",
    ]);
    expect(seen[0]?.auth).toBe("Bearer t");
    expect(seen[0]?.body).toBe(JSON.stringify(fence));
    expect(proxy.exchanges()).toBe(2);
    expect(checker.checked.get("heartbeat_request")).toBe(1);
    expect(checker.checked.get("heartbeat_response")).toBe(1);
    expect(checker.mismatches.map((m) => [m.where, m.contract])).toEqual([
      ["POST /v1/task/complete → 409", "error_body"],
    ]);
  });
});
