import type postgres from "postgres";
import * as v from "valibot";
import type { Db } from "../../db/connect";

/**
 * The lease fence (invariant 2), in one place. Every fenced statement —
 * heartbeat, buffer-publish, complete, fail — puts `fenceSql` in its WHERE
 * clause over `state.tasks t`, so the check and the change are one statement
 * and one row lock. When such a statement changes nothing, `classifyFence`
 * says why, by one rule for every endpoint.
 */

export interface Fence {
  taskId: string;
  attempt: number;
  leaseToken: string;
  /** The org the capability token was issued for: it must be the task's. */
  orgId: string;
}

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * What the fence compares the task row with: one call's values, or the
 * columns of a row source when one statement fences several calls, each
 * against its own row (`fenceOf(db, "r")`, for merged completes).
 */
export type FenceSource = { [K in keyof Fence]: Fence[K] | Fragment };

/** The fence values of each call, as the columns `id, attempt, lease_token, org_id` of `alias`. */
export const fenceOf = (db: Db, alias: string): FenceSource => ({
  taskId: db`${db(alias)}.id`,
  attempt: db`${db(alias)}.attempt`,
  leaseToken: db`${db(alias)}.lease_token`,
  orgId: db`${db(alias)}.org_id`,
});

/**
 * The head of a statement that fences several calls at once: `r` holds each
 * call's fence values (`id, attempt, lease_token, org_id`, then `n`, its
 * place) and `locked` their task rows, locked in id order so that two such
 * statements never deadlock. The statement goes on with `, name AS (…)`.
 */
export function fencedCallsHead(db: Db, fences: readonly Fence[]): Fragment {
  const ids = fences.map((f) => f.taskId);
  return db`
    WITH r AS (
      SELECT * FROM unnest(${ids}::uuid[], ${fences.map((f) => f.attempt)}::int[],
                           ${fences.map((f) => f.leaseToken)}::uuid[], ${fences.map((f) => f.orgId)}::text[])
        WITH ORDINALITY AS r(id, attempt, lease_token, org_id, n)
    ), ${lockedInIdOrder(db, ids)}`;
}

/**
 * `column = ANY(ids)`: written on every access to the rows of a statement's
 * tasks (`state.tasks`, `state.task_attempts`), so that each is an index
 * condition on those ids. The dispatcher plans a statement once per
 * connection (genericPlans: sequential scans off), often while the table
 * is nearly empty; a join on ids alone was then planned as a scan of the
 * whole table, and every later call paid for the table's size.
 */
export const amongIds = (db: Db, column: Fragment, ids: readonly string[]): Fragment =>
  db`${column} = ANY(${ids}::uuid[])`;

/** `locked`: the task rows of `ids`, locked in id order. */
export const lockedInIdOrder = (db: Db, ids: readonly string[]): Fragment => db`locked AS (
      SELECT t.id FROM state.tasks t WHERE ${amongIds(db, db`t.id`, ids)} ORDER BY t.id FOR UPDATE
    )`;

/** `ms` after the statement's now(), by the database clock. */
export const msFromNow = (db: Db, ms: number): Fragment =>
  db`now() + make_interval(secs => ${ms}::double precision / 1000)`;

/** The end of a lease that starts now (claim and heartbeat). */
export const leaseEnd = msFromNow;

/** This attempt and token of this task, for this org (whatever the task's status). */
const attemptSql = (db: Db, f: FenceSource): Fragment =>
  db`t.id = ${f.taskId} AND t.attempt = ${f.attempt} AND t.lease_token = ${f.leaseToken}
     AND t.org_id = ${f.orgId}`;

/**
 * THE fence: the attempt is the current one, running, and its lease is live
 * by the database clock. `status::text`: no status index can serve the test,
 * so the rows are found by id (`amongIds`). Planned on statistics that saw
 * no running task, "status = 'running'" looked like the cheapest way in,
 * and then read every running task's entry on every call.
 */
export const fenceSql = (db: Db, f: FenceSource): Fragment =>
  db`(${attemptSql(db, f)} AND t.status::text = 'running' AND t.lease_expires_at > now())`;

const FenceRow = v.object({
  same_org: v.boolean(),
  completed: v.boolean(),
  holds: v.boolean(),
  batch_known: v.boolean(),
});
export type FenceRow = v.InferOutput<typeof FenceRow>;

/**
 * The task as fencing sees it now: whether the token's org is the task's,
 * whether this attempt completed it, whether the fence holds, and whether
 * `batchUri` (a complete's batch; true without one) is among the current
 * attempt's batches. Null when there is no such task. Read in a statement
 * of its own, after a fenced statement that changed nothing, so it sees
 * what that statement waited for.
 */
export async function taskFenceRead(db: Db, f: Fence, batchUri?: string): Promise<FenceRow | null> {
  const uri = batchUri ?? null;
  const [row] = await db`
    SELECT t.org_id = ${f.orgId} AS same_org,
           coalesce(${attemptSql(db, f)} AND t.status = 'succeeded', false) AS completed,
           coalesce(${fenceSql(db, f)}, false) AS holds,
           (${uri}::text IS NULL OR md5(${uri}::text)::uuid = ANY(t.attempt_batches)) AS batch_known
    FROM state.tasks t WHERE t.id = ${f.taskId}`;
  return row === undefined ? null : v.parse(FenceRow, row);
}

/**
 * Why a fenced call was refused, in this order: a token signed for another
 * org than the task's (403, whatever the task's state), a repeat of this
 * attempt's own complete (200 for complete, stale for the others) — unless
 * it carries a batch the attempt never published (`unpublished`, 409: not a
 * repeat) — or stale (409: another attempt or token, an expired lease, a
 * finished or unknown task).
 */
export type FenceRefusal = "wrong_org" | "completed" | "unpublished" | "stale";

export function classifyFence(row: FenceRow | null): FenceRefusal {
  if (row === null) return "stale";
  if (!row.same_org) return "wrong_org";
  if (row.completed) return row.batch_known ? "completed" : "unpublished";
  return "stale";
}
