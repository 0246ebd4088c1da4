import { expect } from "bun:test";
import * as v from "valibot";
import { ClaimResponse } from "../../src/contracts/http";
import type { Sql } from "../../src/db/connect";
import { createTasks } from "../../src/tasks/create";
import type { TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";

/** Small helpers shared by the dispatcher tests: create, claim, call, and look at the database. */

export const HEADER = "X-Trace-Task-Capability";

export interface Claimed {
  task_id: string;
  org_id: string;
  attempt: number;
  lease_token: string;
  lease_expires_at: string;
  capability_token: string;
}

export async function newTask(sql: Sql, orgId = "acme"): Promise<string> {
  const [id] = await createTasks(sql, { orgId, payload: { alerts: 2 }, count: 1 });
  if (id === undefined) throw new Error("no task created");
  return id;
}

/** The JWKS document, as far as the tests look at it. */
export const Jwks = v.object({
  keys: v.array(v.looseObject({ kid: v.string(), kty: v.string(), d: v.optional(v.unknown()) })),
});

export function claimRaw(d: TestDispatcher, taskId: string, bearer = d.internalToken) {
  return fetch(`${d.url}/internal/task-claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({ task_id: taskId }),
  });
}

export async function claim(d: TestDispatcher, taskId: string): Promise<Claimed> {
  const res = await claimRaw(d, taskId);
  const body: unknown = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return v.parse(ClaimResponse, body);
}

export function call(
  d: TestDispatcher,
  endpoint: "heartbeat" | "buffer-publish" | "complete",
  token: string | undefined,
  body: unknown,
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers[HEADER] = token;
  return fetch(`${d.url}/v1/task/${endpoint}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export const fence = (c: Claimed) => ({
  task_id: c.task_id,
  attempt: c.attempt,
  lease_token: c.lease_token,
});

export function batchOf(c: Claimed, objectStoreUrl: string, name = `${c.attempt}-a.jsonl`) {
  return {
    ...fence(c),
    batch_uri: `${objectStoreUrl}/${c.org_id}/${c.task_id}/${name}`,
    content_type: "application/x-ndjson",
    batch_size_bytes: 123,
  };
}

/**
 * Everything a task API call could change for one task: its row (without the
 * reaper's bookkeeping), its outbox rows and its queue messages.
 */
export async function footprint(sql: Sql, taskId: string) {
  const [task] = await sql`
    SELECT status, attempt, lease_token, lease_expires_at, last_error, updated_at, finished_at
    FROM state.tasks WHERE id = ${taskId}`;
  const outbox = await sql`
    SELECT id, queue_name, status FROM state.outbox
    WHERE task_id = ${taskId} AND queue_name <> 'task_wakeup' ORDER BY id`;
  const messages = await sql`
    SELECT id, queue_name FROM state.queue_messages
    WHERE payload->>'task_id' = ${taskId} AND queue_name <> 'task_wakeup' ORDER BY id`;
  return { task, outbox: [...outbox], messages: [...messages] };
}

export async function messagesFor(sql: Sql, queue: string, taskId: string) {
  const rows = await sql`
    SELECT id, payload FROM state.queue_messages
    WHERE queue_name = ${queue} AND payload->>'task_id' = ${taskId} ORDER BY id`;
  return [...rows];
}

/** Waits until the database clock says the task's lease has expired. */
export async function leaseExpired(sql: Sql, taskId: string): Promise<void> {
  await waitFor(
    async () => {
      const [r] =
        await sql`SELECT lease_expires_at <= now() AS expired FROM state.tasks WHERE id = ${taskId}`;
      return r?.expired === true;
    },
    { what: `the lease of ${taskId} to expire`, timeoutMs: 15_000 },
  );
}

/** Waits until the outbox has no pending row (the drainer caught up). */
export async function drained(sql: Sql): Promise<void> {
  await waitFor(
    async () => {
      const [r] = await sql`SELECT count(*)::int AS n FROM state.outbox WHERE status = 'pending'`;
      return r?.n === 0;
    },
    { what: "the outbox to drain", timeoutMs: 10_000 },
  );
}
