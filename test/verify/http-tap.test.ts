import { describe, expect, test } from "bun:test";
import { HttpReader, LeaseTap } from "../../src/verify/http-tap";

/** The lease tap reads HTTP/1.1 as the proxy passes it on, in whatever pieces it comes. */

const enc = new TextEncoder();

function request(path: string, body: unknown): string {
  const json = JSON.stringify(body);
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${enc.encode(json).length}\r\n\r\n${json}`;
}

function response(status: number, body: unknown, chunked = false): string {
  const json = JSON.stringify(body);
  if (!chunked)
    return `HTTP/1.1 ${status} X\r\ncontent-length: ${enc.encode(json).length}\r\n\r\n${json}`;
  const half = Math.floor(json.length / 2);
  const chunk = (s: string) => `${enc.encode(s).length.toString(16)}\r\n${s}\r\n`;
  return `HTTP/1.1 ${status} X\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(json.slice(0, half))}${chunk(json.slice(half))}0\r\n\r\n`;
}

/** Feeds `text` in pieces of `size` bytes. */
function feed(tap: LeaseTap, conn: number, dir: "request" | "response", text: string, size = 7) {
  const bytes = enc.encode(text);
  for (let i = 0; i < bytes.length; i += size) tap.data(conn, dir, bytes.subarray(i, i + size));
}

describe("lease tap", () => {
  test("a reader splits a stream into messages, sized or chunked, across any cut", () => {
    const r = new HttpReader();
    const all = enc.encode(response(200, { a: 1 }) + response(409, { b: 2 }, true));
    const got = [];
    for (let i = 0; i < all.length; i += 3) got.push(...r.push(all.subarray(i, i + 3)));
    expect(got.map((m) => [m.startLine, new TextDecoder().decode(m.body)])).toEqual([
      ["HTTP/1.1 200 X", '{"a":1}'],
      ["HTTP/1.1 409 X", '{"b":2}'],
    ]);
  });

  test("keeps the leases granted by claims and heartbeats, not refusals or other calls", () => {
    const tap = new LeaseTap();
    const task = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const exp = "2026-12-01T10:00:02.000Z";
    feed(tap, 1, "request", request("/internal/task-claim", { task_id: task }));
    feed(
      tap,
      1,
      "request",
      request("/v1/task/heartbeat", { task_id: task, attempt: 3, lease_token: "t" }),
    );
    feed(
      tap,
      1,
      "request",
      request("/v1/task/heartbeat", { task_id: task, attempt: 3, lease_token: "t" }),
    );
    feed(
      tap,
      1,
      "request",
      request("/v1/task/complete", { task_id: task, attempt: 3, lease_token: "t" }),
    );
    feed(
      tap,
      1,
      "response",
      response(200, { task_id: task, attempt: 3, lease_expires_at: exp, payload: {} }),
    );
    feed(tap, 1, "response", response(200, { lease_expires_at: exp }, true));
    feed(tap, 1, "response", response(409, { error: "stale_lease", message: "x" }));
    feed(tap, 1, "response", response(200, {}));
    expect(tap.grants).toEqual([
      { kind: "claim", taskId: task, attempt: 3, leaseExpiresAt: new Date(exp) },
      { kind: "heartbeat", taskId: task, attempt: 3, leaseExpiresAt: new Date(exp) },
    ]);
  });

  test("a connection cut mid-answer loses only that exchange", () => {
    const tap = new LeaseTap();
    const task = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    const exp = "2026-12-01T10:00:02.000Z";
    const beat = request("/v1/task/heartbeat", { task_id: task, attempt: 1, lease_token: "t" });
    feed(tap, 1, "request", beat);
    feed(tap, 1, "response", response(200, { lease_expires_at: exp }).slice(0, 20));
    tap.closed(1);
    feed(tap, 2, "request", beat);
    feed(tap, 2, "response", response(200, { lease_expires_at: exp }));
    expect(tap.grants).toHaveLength(1);
  });
});
