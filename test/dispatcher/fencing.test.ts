import { beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { ClaimResponse } from "../../src/contracts/http";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { expireLease, type InProcess, inProcess, STORE, snapshot } from "./_inprocess";

/**
 * Invariant 2, in-process: every fenced endpoint × every way an attempt can
 * be fenced out → its status code, and not one row changed (the task row's
 * version, its attempts, its outbox rows).
 */

const db = useFreshDatabase();
let api: InProcess;

beforeAll(async () => {
  api = await inProcess(db().sql, { maxAttempts: 5 });
});

type Endpoint = "heartbeat" | "buffer-publish" | "complete" | "fail";
const ENDPOINTS: readonly Endpoint[] = ["heartbeat", "buffer-publish", "complete", "fail"];

const fenceOf = (c: Pick<ClaimResponse, "task_id" | "attempt" | "lease_token">) => ({
  task_id: c.task_id,
  attempt: c.attempt,
  lease_token: c.lease_token,
});

function bodyFor(endpoint: Endpoint, c: ClaimResponse, name = "a.jsonl") {
  const fence = fenceOf(c);
  if (endpoint === "buffer-publish") {
    return {
      ...fence,
      batch_uri: `${STORE}/${c.org_id}/${c.task_id}/${c.attempt}-${name}`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    };
  }
  if (endpoint === "fail") return { ...fence, reason: "boom", retryable: true };
  return fence;
}

const call = (endpoint: Endpoint, body: unknown, token: string) =>
  api.post(`/v1/task/${endpoint}`, body, token);

/** Calls every endpoint as `c` and expects `status`/`error` from each, with nothing changed. */
async function expectRefusedEverywhere(
  c: ClaimResponse,
  expected: { status: number; error: string; except?: Partial<Record<Endpoint, number>> },
  over: { token?: string; body?: Record<string, unknown> } = {},
) {
  for (const endpoint of ENDPOINTS) {
    const before = await snapshot(db().sql, c.task_id);
    const res = await call(
      endpoint,
      { ...bodyFor(endpoint, c), ...over.body },
      over.token ?? c.capability_token,
    );
    const status = expected.except?.[endpoint] ?? expected.status;
    const body: unknown = await res.json();
    expect(res.status, `${endpoint}: ${JSON.stringify(body)}`).toBe(status);
    if (status >= 400) expect(body).toMatchObject({ error: expected.error });
    expect(await snapshot(db().sql, c.task_id), endpoint).toEqual(before);
  }
}

describe("fenced endpoints refuse every attempt but the current one and change nothing", () => {
  test("an old attempt (fenced out by a newer claim) → 409 stale_lease", async () => {
    const id = await newTask(db().sql);
    const first = await api.claim(id);
    await expireLease(db().sql, id);
    const second = await api.claim(id);
    expect(second.attempt).toBe(2);
    await expectRefusedEverywhere(first, { status: 409, error: "stale_lease" });
    // attempt 2's own token, with attempt 1's lease token
    await expectRefusedEverywhere(
      second,
      { status: 409, error: "stale_lease" },
      { body: { lease_token: first.lease_token } },
    );
  });

  test("the current attempt with another lease token → 409 stale_lease", async () => {
    const c = await api.claim(await newTask(db().sql));
    await expectRefusedEverywhere(
      c,
      { status: 409, error: "stale_lease" },
      { body: { lease_token: randomUUID() } },
    );
  });

  test("the current attempt after its lease expired, no newer claim yet → 409 stale_lease", async () => {
    const id = await newTask(db().sql);
    const c = await api.claim(id);
    await expireLease(db().sql, id);
    await expectRefusedEverywhere(c, { status: 409, error: "stale_lease" });
  });

  test("a token the dispatcher signed for another org → 403 capability_mismatch", async () => {
    const c = await api.claim(await newTask(db().sql, "acme"));
    const token = await api.token({ orgId: "globex", taskId: c.task_id, attempt: c.attempt });
    await expectRefusedEverywhere(c, { status: 403, error: "capability_mismatch" }, { token });
  });

  test("another org's token on a stale attempt is still 403: the org is checked first", async () => {
    const id = await newTask(db().sql, "acme");
    const c = await api.claim(id);
    await expireLease(db().sql, id);
    const token = await api.token({ orgId: "globex", taskId: c.task_id, attempt: c.attempt });
    await expectRefusedEverywhere(c, { status: 403, error: "capability_mismatch" }, { token });
  });

  test("a task this attempt failed for good → 409 stale_lease", async () => {
    const c = await api.claim(await newTask(db().sql));
    const res = await call(
      "fail",
      { ...fenceOf(c), reason: "no", retryable: false },
      c.capability_token,
    );
    expect(res.status).toBe(200);
    await expectRefusedEverywhere(c, { status: 409, error: "stale_lease" });
  });

  test("a task this attempt completed → 409, except a repeated complete: 200", async () => {
    const c = await api.claim(await newTask(db().sql));
    expect((await call("complete", fenceOf(c), c.capability_token)).status).toBe(200);
    await expectRefusedEverywhere(c, {
      status: 409,
      error: "stale_lease",
      except: { complete: 200 },
    });
  });

  test("a task another attempt completed → 409 for the old one, complete included", async () => {
    const id = await newTask(db().sql);
    const first = await api.claim(id);
    await expireLease(db().sql, id);
    const second = await api.claim(id);
    expect((await call("complete", fenceOf(second), second.capability_token)).status).toBe(200);
    await expectRefusedEverywhere(first, { status: 409, error: "stale_lease" });
  });

  test("an unknown task → 409 stale_lease", async () => {
    const c = await api.claim(await newTask(db().sql));
    const taskId = randomUUID();
    const token = await api.token({ orgId: c.org_id, taskId, attempt: c.attempt });
    await expectRefusedEverywhere(
      { ...c, task_id: taskId },
      { status: 409, error: "stale_lease" },
      { token },
    );
  });

  test("a token for another attempt or without the endpoint's scope → 403; a forged one → 401", async () => {
    const c = await api.claim(await newTask(db().sql));
    const other = await api.token({ orgId: c.org_id, taskId: c.task_id, attempt: c.attempt + 1 });
    await expectRefusedEverywhere(
      c,
      { status: 403, error: "capability_mismatch" },
      { token: other },
    );
    const scopeless = await api.token({
      orgId: c.org_id,
      taskId: c.task_id,
      attempt: c.attempt,
      scope: "task:nothing",
    });
    await expectRefusedEverywhere(c, { status: 403, error: "missing_scope" }, { token: scopeless });
    const forged = `${c.capability_token.slice(0, -4)}AAAA`;
    await expectRefusedEverywhere(
      c,
      { status: 401, error: "invalid_capability" },
      { token: forged },
    );
  });
});

describe("the current attempt", () => {
  test("heartbeat → 200 and a later lease, by the database clock", async () => {
    const c = await api.claim(await newTask(db().sql));
    const res = await call("heartbeat", fenceOf(c), c.capability_token);
    expect(res.status).toBe(200);
    const [row] = await db().sql`SELECT lease_expires_at FROM state.tasks WHERE id = ${c.task_id}`;
    expect(await res.json()).toEqual({ lease_expires_at: row?.lease_expires_at.toISOString() });
    expect(row?.lease_expires_at.getTime()).toBeGreaterThanOrEqual(Date.parse(c.lease_expires_at));
  });

  test("buffer-publish → 202 and one pending buffer_queue row carrying the task row's org", async () => {
    const c = await api.claim(await newTask(db().sql, "org-b"));
    const body = bodyFor("buffer-publish", c);
    const res = await call("buffer-publish", body, c.capability_token);
    expect(res.status).toBe(202);
    const { outbox } = await snapshot(db().sql, c.task_id);
    const batches = outbox.filter((o) => o.queue_name === "buffer_queue");
    expect(batches).toHaveLength(1);
    expect(batches[0]?.payload).toEqual({ ...body, lease_token: undefined, org_id: "org-b" });
    expect(batches[0]).toMatchObject({ status: "pending", attempt: 1, available_at: null });
  });

  test("complete → 200: succeeded, its attempt ended completed, one task_completed row at finished_at", async () => {
    const c = await api.claim(await newTask(db().sql));
    const res = await call("complete", fenceOf(c), c.capability_token);
    expect(await res.json()).toEqual({ task_id: c.task_id, attempt: 1, status: "succeeded" });
    const [task] = await db()
      .sql`SELECT status, finished_at FROM state.tasks WHERE id = ${c.task_id}`;
    expect(task?.status).toBe("succeeded");
    const { outbox, attempts } = await snapshot(db().sql, c.task_id);
    const done = outbox.filter((o) => o.queue_name === "task_completed");
    expect(done).toHaveLength(1);
    expect(done[0]?.payload).toEqual({
      task_id: c.task_id,
      org_id: "acme",
      attempt: 1,
      completed_at: task?.finished_at.toISOString(),
    });
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, outcome: "completed", reason: null });
    expect(attempts[0]?.ended_at).toEqual(task?.finished_at);
  });
});
