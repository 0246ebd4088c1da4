import * as v from "valibot";
import type { Db } from "../../db/connect";
import { amongIds, leaseEnd, lockedInIdOrder } from "./fence";

/**
 * The claim (DESIGN.md "Claim"): one statement, decided by the database
 * clock, for one task or several. The row lock serialises two claimers of a
 * task: the second re-checks the WHERE clause against the first's result.
 */

const ClaimRow = v.object({
  org_id: v.nullable(v.string()),
  attempt: v.nullable(v.number()),
  lease_token: v.nullable(v.string()),
  lease_expires_at: v.nullable(v.date()),
  payload: v.unknown(),
  exhausted_attempt: v.nullable(v.number()),
  seen_status: v.nullable(v.string()),
  /** Set when the task, queued, waits for its retry time: when, and in how long (the database clock). */
  retry_at: v.nullable(v.date()),
  retry_in_ms: v.nullable(v.number()),
});

export type ClaimOutcome =
  | {
      kind: "claimed";
      orgId: string;
      attempt: number;
      leaseToken: string;
      leaseExpiresAt: Date;
      payload: unknown;
    }
  | { kind: "exhausted"; attempt: number }
  | { kind: "finished"; status: string }
  | { kind: "lease_active" }
  | { kind: "retry_pending"; retryAt: Date; retryInMs: number }
  | { kind: "not_found" };

/**
 * `queued` (once its `retry_at`, if any, has passed), or `running` with an
 * expired lease → attempt + 1, a new lease and no batches yet, recorded in
 * `state.task_attempts`, where the attempt it took over from ends `fenced`;
 * past `maxAttempts` → `failed`, its last attempt ending `expired`. A queued
 * task whose retry is not due yet is left alone (`retry_pending`), so a
 * duplicate wakeup cannot cut a retryable failure's backoff short. The
 * trailing read sees the row as it was before this statement, which only
 * picks the refusal's reason.
 */
export async function taskClaim(
  db: Db,
  p: { taskId: string; leaseMs: number; maxAttempts: number },
): Promise<ClaimOutcome> {
  const [outcome] = await taskClaimMany(db, { ...p, taskIds: [p.taskId] });
  if (outcome === undefined) throw new Error(`claim of ${p.taskId} returned no row`);
  return outcome;
}

/**
 * `taskClaim` for several distinct tasks in one statement (concurrent claims
 * merged by the dispatcher, ../claims.ts): one outcome per id, in order, each
 * decided exactly as a claim of its own would be. The task rows are locked in
 * id order first, so two such statements never deadlock over the same rows.
 * Ids must be distinct: a task listed twice would be claimed for both.
 */
export async function taskClaimMany(
  db: Db,
  p: { taskIds: readonly string[]; leaseMs: number; maxAttempts: number },
): Promise<ClaimOutcome[]> {
  if (p.taskIds.length === 0) return [];
  // status::text: no index on status can serve this test, so the rows are
  // always found by id. The dispatcher plans each statement once
  // (force_generic_plan); planned while the statistics still said "few queued
  // tasks" (a fresh table, a burst of task creates), a plan that scans every
  // queued task and then matches ids was cheaper on paper, and stayed.
  const claimable = db`(
    (t.status::text = 'queued' AND (t.retry_at IS NULL OR t.retry_at <= now()))
    OR (t.status::text = 'running' AND t.lease_expires_at <= now()))`;
  const ids = p.taskIds;
  const task = amongIds(db, db`t.id`, ids);
  const attempts = amongIds(db, db`a.task_id`, ids);
  const raw = await db`
    WITH req AS (
      SELECT r.id, r.n FROM unnest(${ids}::uuid[]) WITH ORDINALITY AS r(id, n)
    ), ${lockedInIdOrder(db, ids)}, claimed AS (
      UPDATE state.tasks t
      SET status = 'running', attempt = t.attempt + 1, lease_token = gen_random_uuid(),
          lease_expires_at = ${leaseEnd(db, p.leaseMs)}, updated_at = now(), attempt_batches = '{}',
          retry_at = NULL
      FROM locked l
      WHERE t.id = l.id AND ${task} AND t.attempt < ${p.maxAttempts} AND ${claimable}
      RETURNING t.id, t.org_id, t.attempt, t.lease_token::text AS lease_token, t.lease_expires_at, t.payload
    ), recorded AS (
      INSERT INTO state.task_attempts (task_id, attempt, lease_token)
      SELECT c.id, c.attempt, c.lease_token::uuid FROM claimed c
    ), superseded AS (
      UPDATE state.task_attempts a
      SET ended_at = now(), outcome = 'fenced',
          reason = 'lease expired; attempt ' || c.attempt || ' claimed'
      FROM claimed c
      WHERE a.task_id = c.id AND ${attempts} AND a.attempt = c.attempt - 1 AND a.ended_at IS NULL
    ), exhausted AS (
      UPDATE state.tasks t
      SET status = 'failed', finished_at = now(), updated_at = now(),
          last_error = 'attempt ' || t.attempt || ' ended without completing; MAX_ATTEMPTS ' || ${p.maxAttempts} || ' reached'
      FROM locked l
      WHERE t.id = l.id AND ${task} AND t.attempt >= ${p.maxAttempts} AND ${claimable}
      RETURNING t.id, t.attempt, t.last_error
    ), expired AS (
      UPDATE state.task_attempts a
      SET ended_at = now(), outcome = 'expired', reason = x.last_error
      FROM exhausted x
      WHERE a.task_id = x.id AND ${attempts} AND a.attempt = x.attempt AND a.ended_at IS NULL
    )
    SELECT c.org_id, c.attempt, c.lease_token, c.lease_expires_at, c.payload,
           x.attempt AS exhausted_attempt,
           t.status::text AS seen_status,
           CASE WHEN t.status = 'queued' AND t.retry_at > now() THEN t.retry_at END AS retry_at,
           CASE WHEN t.status = 'queued' AND t.retry_at > now()
             THEN (extract(epoch FROM t.retry_at - now()) * 1000)::float8 END AS retry_in_ms
    FROM req
    LEFT JOIN claimed c ON c.id = req.id
    LEFT JOIN exhausted x ON x.id = req.id
    LEFT JOIN state.tasks t ON t.id = req.id AND ${task}
    ORDER BY req.n`;
  const rows = v.parse(v.array(ClaimRow), [...raw]);
  if (rows.length !== p.taskIds.length) {
    throw new Error(`a claim of ${p.taskIds.length} tasks returned ${rows.length} rows`);
  }
  return rows.map((row, i) => claimOutcomeOf(row, p.taskIds[i] ?? ""));
}

function claimOutcomeOf(row: v.InferOutput<typeof ClaimRow>, taskId: string): ClaimOutcome {
  if (row.attempt !== null && row.org_id !== null && row.lease_token !== null) {
    if (row.lease_expires_at === null) throw new Error(`claim of ${taskId} returned no expiry`);
    return {
      kind: "claimed",
      orgId: row.org_id,
      attempt: row.attempt,
      leaseToken: row.lease_token,
      leaseExpiresAt: row.lease_expires_at,
      payload: row.payload,
    };
  }
  if (row.exhausted_attempt !== null) return { kind: "exhausted", attempt: row.exhausted_attempt };
  if (row.seen_status === null) return { kind: "not_found" };
  if (row.seen_status === "succeeded" || row.seen_status === "failed") {
    return { kind: "finished", status: row.seen_status };
  }
  if (row.retry_at !== null && row.retry_in_ms !== null)
    return { kind: "retry_pending", retryAt: row.retry_at, retryInMs: row.retry_in_ms };
  // queued or running as seen before the statement: another claimer got there first.
  return { kind: "lease_active" };
}
