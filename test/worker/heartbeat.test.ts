import { afterAll, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { createLogger, setLogLevel } from "../../src/log";
import { DispatcherClient } from "../../src/worker/client";
import { startHeartbeat } from "../../src/worker/heartbeat";
import { waitFor } from "../support/wait";

/**
 * The heartbeat loop against a scripted in-process dispatcher: an attempt
 * costs nothing on the wire until its first beat is due, then beats every
 * interval, and stop ends a beat in flight.
 */

/** The lease token of each heartbeat received, in order. */
const beats: string[] = [];
/** Heartbeats of these lease tokens are never answered. */
const unanswered = new Set<string>();

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const body = v.parse(v.object({ lease_token: v.string() }), await req.json());
    beats.push(body.lease_token);
    if (unanswered.has(body.lease_token)) return new Promise<Response>(() => {});
    return Response.json({ lease_expires_at: new Date(Date.now() + 60_000).toISOString() });
  },
});
afterAll(() => server.stop(true));

setLogLevel("error");
const log = createLogger("test");
const client = new DispatcherClient({
  baseUrl: `http://127.0.0.1:${server.port}`,
  internalToken: "internal-token-0123456789",
  log,
  backoff: { baseMs: 1, capMs: 5 },
});
const never = new AbortController().signal;

function heartbeat(intervalMs: number) {
  const lease = {
    task_id: randomUUID(),
    attempt: 1,
    lease_token: randomUUID(),
    capability_token: "cap.jwt.token",
  };
  const renewals: Date[] = [];
  const hb = startHeartbeat({
    client,
    lease,
    intervalMs,
    signal: never,
    log,
    onRenewed: (_sentAt, expiresAt) => renewals.push(expiresAt),
    onFenced: () => {},
  });
  return { hb, lease, renewals, sent: () => beats.filter((t) => t === lease.lease_token).length };
}

test("an attempt stopped before its first beat is due sends none; a running one beats every interval", async () => {
  const early = heartbeat(50);
  await early.hb.stop();
  // Started after the early one, on the same interval: once it has beaten twice,
  // the early one's first beat would have been due long ago.
  const running = heartbeat(50);
  await waitFor(() => running.renewals.length >= 2, { what: "two renewals" });
  await running.hb.stop();
  expect(early.sent()).toBe(0);
  expect(running.sent()).toBe(running.renewals.length);
});

test("stop ends a beat in flight and no beat follows it", async () => {
  const hung = heartbeat(20);
  unanswered.add(hung.lease.lease_token);
  await waitFor(() => hung.sent() === 1, { what: "a beat in flight" });
  await hung.hb.stop();
  const after = heartbeat(20);
  await waitFor(() => after.renewals.length >= 2, { what: "two renewals of another lease" });
  await after.hb.stop();
  expect(hung.sent()).toBe(1);
  expect(hung.renewals).toEqual([]);
});
