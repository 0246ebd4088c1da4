import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * The dashboard's reads of `state.tasks`: one page of the task list and one
 * task. Every page is one bounded index scan per status (keyset, never
 * OFFSET): `tasks_status_created_idx`, or `tasks_org_status_created_idx`
 * when filtered by org, newest first; a search by id is a range of the
 * primary key. The `expired` filter is `running` tasks whose lease is over:
 * running rows are few (at most the workers' concurrency), so it needs no
 * index on `lease_expires_at`, which stays unindexed for HOT heartbeats.
 */

export const TASK_FILTERS = ["queued", "running", "expired", "succeeded", "failed"] as const;
export type TaskFilter = (typeof TASK_FILTERS)[number];

/** Where a page starts: after this row, in the page's order. */
export interface TaskCursor {
  /** `created_at` exactly as the database printed it (microseconds kept). */
  at: string;
  id: string;
}

const TaskListRow = v.object({
  id: v.string(),
  org_id: v.string(),
  status: v.string(),
  attempt: v.number(),
  created_at: v.date(),
  updated_at: v.date(),
  finished_at: v.nullable(v.date()),
  lease_expires_at: v.nullable(v.date()),
  lease_expired: v.boolean(),
  last_error: v.nullable(v.string()),
  cursor_at: v.string(),
});
export type TaskListRow = v.InferOutput<typeof TaskListRow>;

export interface TaskPageParams {
  filter?: TaskFilter;
  orgId?: string;
  /** Hex digits (dashes allowed) the id starts with; a whole id finds one task. */
  idPrefix?: string;
  after?: TaskCursor;
  limit: number;
}

/** The smallest and largest uuid starting with `prefix` (hex digits only). */
export function uuidRange(prefix: string): { lo: string; hi: string } {
  const hex = prefix.replaceAll("-", "").toLowerCase().slice(0, 32);
  const shape = (s: string) =>
    `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
  return { lo: shape(hex.padEnd(32, "0")), hi: shape(hex.padEnd(32, "f")) };
}

const columns = (db: Db) => db`
  id::text AS id, org_id, status::text AS status, attempt, created_at, updated_at, finished_at,
  lease_expires_at, (status = 'running' AND lease_expires_at <= now()) AS lease_expired,
  left(last_error, 300) AS last_error, created_at::text AS cursor_at`;

/** One page of tasks, newest first (by id when searching by id), and the cursor of the next. */
export async function taskPage(
  db: Db,
  p: TaskPageParams,
): Promise<{ rows: TaskListRow[]; next: TaskCursor | null }> {
  const rows = p.idPrefix === undefined ? await byStatus(db, p) : await byIdPrefix(db, p);
  const parsed = v.parse(v.array(TaskListRow), rows);
  const page = parsed.slice(0, p.limit);
  const last = page.at(-1);
  const next =
    parsed.length > p.limit && last !== undefined ? { at: last.cursor_at, id: last.id } : null;
  return { rows: page, next };
}

function byStatus(db: Db, p: TaskPageParams) {
  const statuses =
    p.filter === undefined
      ? db`unnest(enum_range(NULL::state.task_status))`
      : db`unnest(ARRAY[${p.filter === "expired" ? "running" : p.filter}]::state.task_status[])`;
  const org = p.orgId === undefined ? db`` : db`AND t.org_id = ${p.orgId}`;
  const after =
    p.after === undefined
      ? db``
      : // Sent as text: postgres.js would pass a timestamptz parameter through Date (milliseconds).
        db`AND (t.created_at, t.id) < (${p.after.at}::text::timestamptz, ${p.after.id}::uuid)`;
  const expired = p.filter === "expired" ? db`AND t.lease_expires_at <= now()` : db``;
  // One index scan per status, each stopping after limit + 1 rows, merged newest first.
  return db`
    SELECT ${columns(db)} FROM ${statuses} AS s(st), LATERAL (
      SELECT * FROM state.tasks t
      WHERE t.status = s.st ${org} ${after} ${expired}
      ORDER BY t.created_at DESC, t.id DESC
      LIMIT ${p.limit + 1}
    ) AS page
    ORDER BY created_at DESC, id DESC
    LIMIT ${p.limit + 1}`;
}

function byIdPrefix(db: Db, p: TaskPageParams) {
  const { lo, hi } = uuidRange(p.idPrefix ?? "");
  const from = p.after === undefined ? lo : p.after.id;
  const op = p.after === undefined ? db`>=` : db`>`;
  const status =
    p.filter === undefined
      ? db``
      : db`AND status = ${p.filter === "expired" ? "running" : p.filter}::state.task_status`;
  const expired = p.filter === "expired" ? db`AND lease_expires_at <= now()` : db``;
  const org = p.orgId === undefined ? db`` : db`AND org_id = ${p.orgId}`;
  return db`
    SELECT ${columns(db)} FROM state.tasks
    WHERE id ${op} ${from}::uuid AND id <= ${hi}::uuid ${status} ${expired} ${org}
    ORDER BY id
    LIMIT ${p.limit + 1}`;
}

const TaskRow = v.object({
  id: v.string(),
  org_id: v.string(),
  status: v.string(),
  attempt: v.number(),
  lease_token: v.nullable(v.string()),
  lease_expires_at: v.nullable(v.date()),
  lease_expired: v.boolean(),
  payload: v.unknown(),
  payload_bytes: v.number(),
  last_error: v.nullable(v.string()),
  created_at: v.date(),
  updated_at: v.date(),
  finished_at: v.nullable(v.date()),
  now: v.date(),
});
export type TaskRow = v.InferOutput<typeof TaskRow>;

/** One task by id (the primary key), with the database's now; null when there is none. */
export async function taskGet(db: Db, p: { taskId: string }): Promise<TaskRow | null> {
  const [row] = await db`
    SELECT id::text AS id, org_id, status::text AS status, attempt, lease_token::text AS lease_token,
           lease_expires_at, (status = 'running' AND lease_expires_at <= now()) AS lease_expired,
           payload, octet_length(payload::text) AS payload_bytes, last_error,
           created_at, updated_at, finished_at, now() AS now
    FROM state.tasks WHERE id = ${p.taskId}::uuid`;
  return row === undefined ? null : v.parse(TaskRow, row);
}
