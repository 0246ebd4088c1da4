import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { HEADER } from "../dispatcher/_client";
import { waitFor } from "../support/wait";
import { removeTempDirs } from "../worker/exec/helpers";
import { attempts, execWorker, finished, rowKeys, task } from "./exec-platform";
import { dispatcherOf, stateSnapshot } from "./http";
import { TestPlatform } from "./platform";

/**
 * `POST /v1/task/fail` with real processes: a stale one is refused and
 * changes nothing; a retryable failure is retried once its backoff passed;
 * a non-retryable one ends the task `failed` with its reason.
 */

const FLAKY = resolve(import.meta.dir, "../../examples/flaky.sh");

let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 1500, visibilityMs: 1000 });
  await p.startDispatcher();
  p.startSink();
});
afterAll(async () => {
  await p.stop();
  removeTempDirs();
});

async function claimNow(taskId: string) {
  const d = dispatcherOf(p);
  const res = await fetch(`${d.url}/internal/task-claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${d.internalToken}`, "content-type": "application/json" },
    body: JSON.stringify({ task_id: taskId }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    task_id: string;
    attempt: number;
    lease_token: string;
    capability_token: string;
  };
}

/** No outbox row left to publish: the drainer will not change the state under a snapshot. */
async function drained(): Promise<void> {
  await waitFor(
    async () => {
      const [r] = await p.state
        .sql`SELECT count(*)::int AS n FROM state.outbox WHERE status = 'pending'`;
      return r?.n === 0;
    },
    { what: "the outbox drained" },
  );
}

function fail(c: { capability_token: string }, body: Record<string, unknown>) {
  return fetch(`${dispatcherOf(p).url}/v1/task/fail`, {
    method: "POST",
    headers: { [HEADER]: c.capability_token, "content-type": "application/json" },
    body: JSON.stringify({ reason: "it broke", retryable: true, ...body }),
  });
}

describe("invariants: POST /v1/task/fail", () => {
  test("a stale fail (another token, or an attempt fenced out) is 409 and changes nothing", async () => {
    const [id = ""] = await p.createPayloadTasks("fail-stale", {});
    await drained();
    const first = await claimNow(id);
    const before = await stateSnapshot(p);
    const wrongToken = await fail(first, {
      task_id: id,
      attempt: first.attempt,
      lease_token: randomUUID(),
    });
    expect(wrongToken.status).toBe(409);
    expect(await stateSnapshot(p)).toEqual(before);
    // Once its lease expired and attempt 2 holds the task, attempt 1's own fence is stale too.
    await waitFor(
      async () => {
        const [r] = await p.state.sql`
          SELECT lease_expires_at < now() AS expired FROM state.tasks WHERE id = ${id}::uuid`;
        return r?.expired === true;
      },
      { what: "attempt 1's lease to expire" },
    );
    const second = await claimNow(id);
    expect(second.attempt).toBe(2);
    await drained();
    const held = await stateSnapshot(p);
    const fenced = await fail(first, { task_id: id, attempt: 1, lease_token: first.lease_token });
    expect(fenced.status).toBe(409);
    expect(await stateSnapshot(p)).toEqual(held);
  }, 30_000);

  test("a retryable failure is retried once its backoff passed (examples/flaky.sh)", async () => {
    const org = "fail-retryable";
    const [id = ""] = await p.createPayloadTasks(org, {});
    await finished(p, org, [id], execWorker(p, FLAKY));
    expect(await task(p, id)).toEqual({ status: "succeeded", attempt: 2 });
    const [first, second] = await attempts(p, id);
    expect(first).toMatchObject({ attempt: 1, outcome: "failed" });
    expect(first?.reason).toContain("failing on purpose");
    expect(second).toMatchObject({ attempt: 2, outcome: "completed" });
    // The database's own clock: attempt 2 was claimed no sooner than attempt 1's backoff (1 s) allowed.
    const [gap] = await p.state.sql<{ ms: number }[]>`
      SELECT (EXTRACT(EPOCH FROM b.claimed_at - a.ended_at) * 1000)::float8 AS ms
      FROM state.task_attempts a JOIN state.task_attempts b USING (task_id)
      WHERE a.task_id = ${id}::uuid AND a.attempt = 1 AND b.attempt = 2`;
    expect(gap?.ms).toBeGreaterThanOrEqual(1000);
    expect(await rowKeys(p, org)).toEqual([`${id}:0`]);
  }, 60_000);

  test("a payload the default worker cannot work: failed for good, with its reason, at once", async () => {
    const org = "fail-not-retryable";
    const [id = ""] = await p.createPayloadTasks(org, { hosts: ["db-1"] });
    const w = p.startWorker(["--concurrency", "1"]);
    await finished(p, org, [id], w);
    expect(await task(p, id)).toEqual({ status: "failed", attempt: 1 });
    const [only, ...more] = await attempts(p, id);
    expect(more).toEqual([]);
    expect(only?.outcome).toBe("failed");
    expect(only?.reason).toContain("the default worker needs {alerts, work_ms?}");
    expect(await rowKeys(p, org)).toEqual([]);
  }, 60_000);
});
