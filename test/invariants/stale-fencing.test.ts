import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { ErrorBody } from "../../src/contracts/http";
import { alertsFor, toJsonl } from "../../src/worker/alerts";
import { WORKER_LOG } from "../../src/worker/logs";
import {
  type Claimed,
  call,
  claim,
  drained,
  fence,
  footprint,
  leaseExpired,
  messagesFor,
} from "../dispatcher/_client";
import { waitFor } from "../support/wait";
import { dispatcherOf, writeObject } from "./http";
import { TestPlatform } from "./platform";

/**
 * Scenario 2: stale attempt fencing. An attempt whose lease expired and was
 * taken over is refused (409) on every call and changes nothing — replayed
 * by hand over HTTP, and as a real worker frozen with SIGSTOP mid-task and
 * resumed after another worker finished the task.
 */

const LEASE_MS = 2000;
let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: LEASE_MS, visibilityMs: 1000 });
  await p.startDispatcher();
  p.startSink();
});
afterAll(async () => {
  await p.stop();
});

/** A good batch for the claimed attempt, written to the store; the buffer-publish body for it. */
async function batchFor(c: Claimed, alerts: number) {
  const body = toJsonl(alertsFor(c.org_id, c.task_id, { alerts }));
  const name = `${c.attempt}-${randomUUID()}.jsonl`;
  const put = await writeObject(p, { orgId: c.org_id, taskId: c.task_id, name }, body);
  return {
    ...fence(c),
    batch_uri: put.uri,
    content_type: "application/x-ndjson",
    batch_size_bytes: put.size,
  };
}

/** A complete carrying the batch of a buffer-publish body. */
const completeWith = (
  f: ReturnType<typeof fence>,
  publish: Awaited<ReturnType<typeof batchFor>>,
) => ({
  ...f,
  batch: {
    batch_uri: publish.batch_uri,
    content_type: publish.content_type,
    batch_size_bytes: publish.batch_size_bytes,
  },
});

/**
 * Replays heartbeat, buffer-publish, complete and complete carrying the
 * batch of a stale attempt: each must be 409 stale_lease.
 */
async function replay(stale: Claimed, publishBody: Awaited<ReturnType<typeof batchFor>>) {
  const d = dispatcherOf(p);
  const calls: Array<["heartbeat" | "buffer-publish" | "complete", unknown]> = [
    ["heartbeat", fence(stale)],
    ["buffer-publish", publishBody],
    ["complete", fence(stale)],
    ["complete", completeWith(fence(stale), publishBody)],
  ];
  for (const [endpoint, body] of calls) {
    const res = await call(d, endpoint, stale.capability_token, body);
    const answer: unknown = await res.json();
    expect(res.status, `${endpoint} of stale attempt ${stale.attempt}`).toBe(409);
    expect(v.parse(ErrorBody, answer).error).toBe("stale_lease");
  }
}

async function replayChangesNothing(
  stale: Claimed,
  publishBody: Awaited<ReturnType<typeof batchFor>>,
): Promise<void> {
  const sql = p.state.sql;
  const before = await footprint(sql, stale.task_id);
  await replay(stale, publishBody);
  await replay(stale, publishBody); // twice: a retrying stale client is no different
  expect(await footprint(sql, stale.task_id)).toEqual(before);
}

describe("invariants: stale attempt fencing", () => {
  test("a direct HTTP replay of attempt 1's calls is refused with 409 and changes nothing, before, during and after attempt 2", async () => {
    const org = "stale-replay";
    const d = dispatcherOf(p);
    const [id] = await p.createTasks(org, 1, 5);
    if (id === undefined) throw new Error("no task created");
    await drained(p.state.sql);

    // Attempt 1: claimed over HTTP, its batch written, then left to expire.
    const first = await claim(d, id);
    expect(first.attempt).toBe(1);
    const stalePublish = await batchFor(first, 5);
    await leaseExpired(p.state.sql, id);

    // Expired, not yet taken over: still refused.
    await replayChangesNothing(first, stalePublish);

    // Attempt 2 takes over; attempt 1 stays fenced out.
    const second = await claim(d, id);
    expect(second.attempt).toBe(2);
    await replayChangesNothing(first, stalePublish);
    // Its token cannot be used for attempt 2's fence either (403, not a takeover).
    const before = await footprint(p.state.sql, id);
    const foreign = [
      ["heartbeat", fence(second)],
      ["complete", fence(second)],
      ["complete", completeWith(fence(second), stalePublish)],
    ] as const;
    for (const [endpoint, body] of foreign) {
      const res = await call(d, endpoint, first.capability_token, body);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: "capability_mismatch" });
    }
    expect(await footprint(p.state.sql, id)).toEqual(before);

    // Attempt 2 finishes through the real API.
    const published = await call(d, "buffer-publish", second.capability_token, {
      ...(await batchFor(second, 5)),
    });
    expect(published.status).toBe(202);
    expect((await call(d, "complete", second.capability_token, fence(second))).status).toBe(200);
    await drained(p.state.sql);
    // The sink takes attempt 2's batch (and acks it) before the snapshot is taken.
    await waitFor(async () => (await messagesFor(p.state.sql, "buffer_queue", id)).length === 0, {
      what: "the sink to ack attempt 2's batch",
      timeoutMs: 20_000,
    });

    // After success: still refused, still nothing changed.
    await replayChangesNothing(first, stalePublish);

    // A real worker consumes the task's leftover wakeups (it finds the task finished).
    const worker = p.startWorker();
    await p.waitQuiet(org, [id], 30_000);
    expect(await worker.stop("SIGTERM")).toBe(0);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(1);
    expect(report.rows.found).toBe(5);
    expect(report.attempts.max).toBe(2);
    const published1 = await p.state.sql`
        SELECT count(*)::int AS n FROM state.outbox
        WHERE task_id = ${id} AND queue_name <> 'task_wakeup' AND attempt = 1`;
    expect(published1[0]?.n).toBe(0);
    const batches = await p.data.sql`
        SELECT attempt, rows_inserted FROM data.sink_batches WHERE task_id = ${id}`;
    expect([...batches]).toEqual([{ attempt: 2, rows_inserted: 5 }]);
  }, 60_000);

  test("a worker frozen with SIGSTOP past its lease and resumed after attempt 2 succeeded is fenced out and writes nothing", async () => {
    const org = "stale-sigstop";
    const ids = await p.createTasks(org, 3, 8, 4000);
    const frozen = p.startWorker(["--concurrency", "3"]);
    // All three mid-work (work_ms 4000, lease 2000): claimed and heartbeating.
    await waitFor(
      () =>
        ids.every((id) =>
          frozen.logs.some(
            (l) => l.msg === WORKER_LOG.claimed && l.task_id === id && l.attempt === 1,
          ),
        ),
      { what: "the first worker to claim all three tasks", timeoutMs: 20_000 },
    );
    frozen.proc.kill("SIGSTOP");
    try {
      for (const id of ids) await leaseExpired(p.state.sql, id);
      const [running] = await p.state.sql`
          SELECT count(*)::int AS n FROM state.tasks
          WHERE id = ANY(${ids}::uuid[]) AND status = 'running' AND attempt = 1`;
      expect(running?.n).toBe(3);

      // Another worker takes attempt 2 of each and finishes them.
      p.startWorker(["--concurrency", "3"]);
      await p.waitQuiet(org, ids, 60_000);
    } finally {
      frozen.proc.kill("SIGCONT");
    }
    const done = await p.state.sql`
        SELECT status::text AS status, attempt FROM state.tasks WHERE id = ANY(${ids}::uuid[])`;
    expect([...done]).toEqual(ids.map(() => ({ status: "succeeded", attempt: 2 })));
    const outboxBefore = await p.state.sql`
        SELECT id FROM state.outbox WHERE task_id = ANY(${ids}::uuid[]) AND queue_name <> 'task_wakeup'`;

    // Resumed: each of its attempts learns it was fenced out (409 stale_lease) and stops.
    await waitFor(
      () =>
        ids.every((id) =>
          frozen.logs.some(
            (l) =>
              l.msg === WORKER_LOG.fencedOut &&
              l.task_id === id &&
              l.status === 409 &&
              l.code === "stale_lease",
          ),
        ),
      { what: "the resumed worker to be fenced out of all three attempts", timeoutMs: 20_000 },
    );
    await p.waitQuiet(org, ids, 30_000);
    const outboxAfter = await p.state.sql`
        SELECT id FROM state.outbox WHERE task_id = ANY(${ids}::uuid[]) AND queue_name <> 'task_wakeup'`;
    expect([...outboxAfter]).toEqual([...outboxBefore]);

    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(3);
    expect(report.rows.found).toBe(3 * 8);
    expect(report.attempts.max).toBe(2);
    expect(report.outbox.staleRows).toBe(0);
    // Only attempt 2 ever published or completed.
    const attempts = await p.state.sql`
        SELECT DISTINCT queue_name, attempt FROM state.outbox
        WHERE task_id = ANY(${ids}::uuid[]) AND queue_name <> 'task_wakeup' ORDER BY queue_name`;
    expect([...attempts]).toEqual([
      { queue_name: "buffer_queue", attempt: 2 },
      { queue_name: "task_completed", attempt: 2 },
    ]);
    const batches = await p.data.sql`
        SELECT DISTINCT attempt FROM data.sink_batches WHERE task_id = ANY(${ids}::uuid[])`;
    expect([...batches]).toEqual([{ attempt: 2 }]);
  }, 120_000);
});
