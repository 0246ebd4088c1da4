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

/** The endpoints, and complete carrying the attempt's batch (`complete+batch`). */
type Endpoint = "heartbeat" | "buffer-publish" | "complete" | "complete+batch" | "fail";
const ENDPOINTS: readonly Endpoint[] = [
  "heartbeat",
  "buffer-publish",
  "complete",
  "complete+batch",
  "fail",
];

const fenceOf = (c: Pick<ClaimResponse, "task_id" | "attempt" | "lease_token">) => ({
  task_id: c.task_id,
  attempt: c.attempt,
  lease_token: c.lease_token,
});

const batchOf = (c: ClaimResponse, name = "a.jsonl") => ({
  batch_uri: `${STORE}/${c.org_id}/${c.task_id}/${c.attempt}-${name}`,
  content_type: "application/x-ndjson",
  batch_size_bytes: 10,
});

function bodyFor(endpoint: Endpoint, c: ClaimResponse, name = "a.jsonl") {
  const fence = fenceOf(c);
  if (endpoint === "buffer-publish") return { ...fence, ...batchOf(c, name) };
  if (endpoint === "complete+batch") return { ...fence, batch: batchOf(c, name) };
  if (endpoint === "fail") return { ...fence, reason: "boom", retryable: true };
  return fence;
}

const call = (endpoint: Endpoint, body: unknown, token: string) =>
  api.post(`/v1/task/${endpoint === "complete+batch" ? "complete" : endpoint}`, body, token);

type Expected = { status: number; error?: string };

/** Calls every endpoint as `c` and expects `status`/`error` from each, with nothing changed. */
async function expectRefusedEverywhere(
  c: ClaimResponse,
  expected: { status: number; error: string; except?: Partial<Record<Endpoint, Expected>> },
  over: { token?: string; body?: Record<string, unknown> } = {},
) {
  for (const endpoint of ENDPOINTS) {
    const before = await snapshot(db().sql, c.task_id);
    const res = await call(
      endpoint,
      { ...bodyFor(endpoint, c), ...over.body },
      over.token ?? c.capability_token,
    );
    const { status, error } = expected.except?.[endpoint] ?? expected;
    const body: unknown = await res.json();
    expect(res.status, `${endpoint}: ${JSON.stringify(body)}`).toBe(status);
    if (status >= 400) expect(body).toMatchObject({ error });
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
      // A complete carrying a batch the attempt never published is no repeat.
      except: {
        complete: { status: 200 },
        "complete+batch": { status: 409, error: "batch_not_published" },
      },
    });
  });

  test("a task this attempt completed with its batch → a repeat of either complete: 200", async () => {
    const c = await api.claim(await newTask(db().sql));
    const res = await call("complete+batch", bodyFor("complete+batch", c), c.capability_token);
    expect(res.status).toBe(200);
    await expectRefusedEverywhere(c, {
      status: 409,
      error: "stale_lease",
      except: { complete: { status: 200 }, "complete+batch": { status: 200 } },
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

  test("complete with its batch → 200: the batch's row (the task row's org), then task_completed", async () => {
    const c = await api.claim(await newTask(db().sql, "org-b"));
    const body = bodyFor("complete+batch", c);
    const res = await call("complete+batch", body, c.capability_token);
    expect(await res.json()).toEqual({ task_id: c.task_id, attempt: 1, status: "succeeded" });
    const { task, outbox, attempts } = await snapshot(db().sql, c.task_id);
    expect(task?.status).toBe("succeeded");
    expect(attempts[0]).toMatchObject({ attempt: 1, outcome: "completed" });
    const written = outbox.filter((o) => o.queue_name !== "task_wakeup");
    expect(written.map((o) => o.queue_name)).toEqual(["buffer_queue", "task_completed"]);
    expect(written[0]?.payload).toEqual({
      ...batchOf(c),
      task_id: c.task_id,
      org_id: "org-b",
      attempt: 1,
    });
    // The same complete again: 200, nothing more written.
    const again = await snapshot(db().sql, c.task_id);
    expect((await call("complete+batch", body, c.capability_token)).status).toBe(200);
    expect(await snapshot(db().sql, c.task_id)).toEqual(again);
  });

  test("complete after buffer-publish of the same batch → 200 and still one buffer row", async () => {
    const c = await api.claim(await newTask(db().sql));
    expect(
      (await call("buffer-publish", bodyFor("buffer-publish", c), c.capability_token)).status,
    ).toBe(202);
    expect(
      (await call("complete+batch", bodyFor("complete+batch", c), c.capability_token)).status,
    ).toBe(200);
    const { outbox } = await snapshot(db().sql, c.task_id);
    expect(outbox.filter((o) => o.queue_name === "buffer_queue")).toHaveLength(1);
    expect(outbox.filter((o) => o.queue_name === "task_completed")).toHaveLength(1);
  });

  test("complete with a batch outside its task's prefix, or invalid → 422 invalid_batch, nothing changed", async () => {
    const c = await api.claim(await newTask(db().sql));
    const other = await api.claim(await newTask(db().sql));
    const bad = [
      batchOf(other),
      { ...batchOf(c), batch_uri: "file:///etc/passwd" },
      { ...batchOf(c), batch_uri: `${STORE}/${c.org_id}/${c.task_id}/../x.jsonl` },
      { ...batchOf(c), content_type: "text/plain" },
      { ...batchOf(c), batch_size_bytes: 0 },
    ];
    const before = await snapshot(db().sql, c.task_id);
    for (const batch of bad) {
      const res = await call("complete+batch", { ...fenceOf(c), batch }, c.capability_token);
      expect(res.status, batch.batch_uri).toBe(422);
      expect(await res.json()).toMatchObject({ error: "invalid_batch" });
    }
    expect(await snapshot(db().sql, c.task_id)).toEqual(before);
  });

  test("complete with a batch past MAX_BATCHES_PER_ATTEMPT → 422 too_many_batches, nothing changed", async () => {
    const capped = await inProcess(db().sql, { maxBatchesPerAttempt: 1 });
    const c = await capped.claim(await newTask(db().sql));
    const publish = { ...fenceOf(c), ...batchOf(c, "1.jsonl") };
    expect((await capped.post("/v1/task/buffer-publish", publish, c.capability_token)).status).toBe(
      202,
    );
    const before = await snapshot(db().sql, c.task_id);
    const body = { ...fenceOf(c), batch: batchOf(c, "2.jsonl") };
    const res = await capped.post("/v1/task/complete", body, c.capability_token);
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: "too_many_batches" });
    expect(await snapshot(db().sql, c.task_id)).toEqual(before);
  });

  test("complete with a batch needs the buffer-publish scope too → 403 missing_scope, nothing changed", async () => {
    const c = await api.claim(await newTask(db().sql));
    const token = await api.token({
      orgId: c.org_id,
      taskId: c.task_id,
      attempt: c.attempt,
      scope: "task:complete",
    });
    const before = await snapshot(db().sql, c.task_id);
    const res = await call("complete+batch", bodyFor("complete+batch", c), token);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "missing_scope" });
    expect(await snapshot(db().sql, c.task_id)).toEqual(before);
    expect((await call("complete", fenceOf(c), token)).status).toBe(200);
  });

  test("a complete body with an unknown field, also inside batch → 400", async () => {
    const c = await api.claim(await newTask(db().sql));
    const before = await snapshot(db().sql, c.task_id);
    for (const body of [
      { ...fenceOf(c), extra: 1 },
      { ...fenceOf(c), batch: { ...batchOf(c), extra: 1 } },
      { ...fenceOf(c), batch: { batch_uri: batchOf(c).batch_uri } },
    ]) {
      expect((await call("complete", body, c.capability_token)).status).toBe(400);
    }
    expect(await snapshot(db().sql, c.task_id)).toEqual(before);
  });
});
