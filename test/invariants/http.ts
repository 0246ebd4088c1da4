import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { TestDispatcher } from "../support/dispatcher";
import type { TestPlatform } from "./platform";

/**
 * Helpers for scenarios that drive the task API by hand against a
 * TestPlatform: its dispatcher, batches written straight into its object
 * store, and snapshots of everything a task API call could change.
 */

/** The platform's first dispatcher (the tests of test/dispatcher/_client.ts take one). */
export function dispatcherOf(p: TestPlatform): TestDispatcher {
  const d = p.dispatchers[0];
  if (d === undefined) throw new Error("no dispatcher started");
  return d;
}

/** The platform's OBJECT_STORE_URL, without a trailing slash. */
export function objectStoreUrl(p: TestPlatform): string {
  const url = p.env.OBJECT_STORE_URL;
  if (url === undefined) throw new Error("the platform has no OBJECT_STORE_URL");
  return url.replace(/\/+$/, "");
}

/**
 * Writes `body` as `<org>/<task>/<name>` in the platform's file object store
 * and returns its URI, the way a worker would have put it there.
 */
export async function writeObject(
  p: TestPlatform,
  key: { orgId: string; taskId: string; name: string },
  body: string | Uint8Array,
): Promise<{ uri: string; size: number }> {
  const path = join(p.objectDir, key.orgId, key.taskId, key.name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, body);
  const size = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  return { uri: `${objectStoreUrl(p)}/${key.orgId}/${key.taskId}/${key.name}`, size };
}

/**
 * Every row of the tables a task API call may change: state.tasks (without
 * the reaper's `reaped_expiry` bookkeeping), state.task_attempts,
 * state.outbox and state.queue_messages, in a stable order; and the depth of
 * every queue through the seam (what changes on a broker, where the queues
 * are not tables).
 */
export async function stateSnapshot(p: TestPlatform) {
  const sql = p.state.sql;
  const tasks = await sql`
    SELECT id::text AS id, org_id, status::text AS status, attempt, lease_token::text AS lease_token,
           lease_expires_at, payload, last_error, created_at, updated_at, finished_at
    FROM state.tasks ORDER BY id`;
  const attempts = await sql`
    SELECT task_id::text AS task_id, attempt, lease_token::text AS lease_token, claimed_at
    FROM state.task_attempts ORDER BY task_id, attempt`;
  const outbox = await sql`SELECT * FROM state.outbox ORDER BY id`;
  const messages = await sql`SELECT * FROM state.queue_messages ORDER BY id`;
  return {
    tasks: [...tasks],
    attempts: [...attempts],
    outbox: [...outbox],
    messages: [...messages],
    queues: await p.queue.admin().depths(),
  };
}
