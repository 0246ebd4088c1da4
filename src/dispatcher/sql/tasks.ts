import * as v from "valibot";
import type { Db } from "../../db/connect";
import { OUTBOX_CHANNEL } from "./outbox";

/**
 * The SQL of `state.tasks`: claims, leases and fencing, all in one place.
 * Every decision about time (is a lease live, when does it end) is made by
 * the database clock, here and nowhere else.
 */

export interface Fence {
  taskId: string;
  attempt: number;
  leaseToken: string;
  /** The org the capability token was issued for: it must be the task's. */
  orgId: string;
}

const leaseEnd = (db: Db, ms: number) =>
  db`now() + make_interval(secs => ${ms}::double precision / 1000)`;

const ClaimRow = v.object({
  org_id: v.nullable(v.string()),
  attempt: v.nullable(v.number()),
  lease_token: v.nullable(v.string()),
  lease_expires_at: v.nullable(v.date()),
  payload: v.unknown(),
  exhausted_attempt: v.nullable(v.number()),
  seen_status: v.nullable(v.string()),
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
  | { kind: "not_found" };

/**
 * Claims a task in one statement. The row lock of the UPDATE serialises two
 * claimers: the second re-checks the WHERE clause against the first's result.
 * `queued`, or `running` with an expired lease → attempt + 1 and a new lease,
 * recorded in `state.task_attempts`; past `maxAttempts` → `failed`. The trailing read sees the row as it was
 * before this statement, which only picks the refusal's reason.
 */
export async function taskClaim(
  db: Db,
  p: { taskId: string; leaseMs: number; maxAttempts: number },
): Promise<ClaimOutcome> {
  const claimable = db`(status = 'queued' OR (status = 'running' AND lease_expires_at <= now()))`;
  const [raw] = await db`
    WITH claimed AS (
      UPDATE state.tasks
      SET status = 'running', attempt = attempt + 1, lease_token = gen_random_uuid(),
          lease_expires_at = ${leaseEnd(db, p.leaseMs)}, updated_at = now()
      WHERE id = ${p.taskId} AND attempt < ${p.maxAttempts} AND ${claimable}
      RETURNING org_id, attempt, lease_token::text AS lease_token, lease_expires_at, payload
    ), recorded AS (
      INSERT INTO state.task_attempts (task_id, attempt, lease_token)
      SELECT ${p.taskId}, attempt, lease_token::uuid FROM claimed
    ), exhausted AS (
      UPDATE state.tasks
      SET status = 'failed', finished_at = now(), updated_at = now(),
          last_error = 'attempt ' || attempt || ' ended without completing; MAX_ATTEMPTS ' || ${p.maxAttempts} || ' reached'
      WHERE id = ${p.taskId} AND attempt >= ${p.maxAttempts} AND ${claimable}
      RETURNING attempt
    )
    SELECT c.org_id, c.attempt, c.lease_token, c.lease_expires_at, c.payload,
           (SELECT attempt FROM exhausted) AS exhausted_attempt,
           t.status::text AS seen_status
    FROM (SELECT 1) AS one
    LEFT JOIN claimed c ON true
    LEFT JOIN state.tasks t ON t.id = ${p.taskId}`;
  const row = v.parse(ClaimRow, raw);
  if (row.attempt !== null && row.org_id !== null && row.lease_token !== null) {
    if (row.lease_expires_at === null) throw new Error(`claim of ${p.taskId} returned no expiry`);
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
  // queued or running as seen before the statement: another claimer got there first.
  return { kind: "lease_active" };
}

/**
 * Extends a live lease held by `fence`. The fencing is the WHERE clause, so
 * a stale attempt, token or expired lease updates nothing and gets null.
 */
export async function leaseRenew(db: Db, p: Fence & { leaseMs: number }): Promise<Date | null> {
  const rows = await db`
    UPDATE state.tasks SET lease_expires_at = ${leaseEnd(db, p.leaseMs)}, updated_at = now()
    WHERE id = ${p.taskId} AND attempt = ${p.attempt} AND lease_token = ${p.leaseToken}
      AND org_id = ${p.orgId} AND status = 'running' AND lease_expires_at > now()
    RETURNING lease_expires_at`;
  const at = rows[0]?.lease_expires_at;
  return at instanceof Date ? at : null;
}

const FencedRow = v.object({
  org_id: v.string(),
  status: v.string(),
  attempt: v.number(),
  lease_token: v.nullable(v.string()),
  live: v.nullable(v.boolean()),
});
export type FencedRow = v.InferOutput<typeof FencedRow>;

/** Locks the task row for the rest of the transaction and reads what fencing needs. */
export async function taskLockForFence(db: Db, p: { taskId: string }): Promise<FencedRow | null> {
  const [row] = await db`
    SELECT org_id, status::text AS status, attempt, lease_token::text AS lease_token,
           lease_expires_at > now() AS live
    FROM state.tasks WHERE id = ${p.taskId} FOR UPDATE`;
  return row === undefined ? null : v.parse(FencedRow, row);
}

/** The fence: this attempt and token are the current ones, and the lease is live. */
export function fenceHolds(row: FencedRow, fence: Fence): boolean {
  return (
    row.org_id === fence.orgId &&
    row.status === "running" &&
    row.attempt === fence.attempt &&
    row.lease_token === fence.leaseToken &&
    row.live === true
  );
}

/** The same attempt and token already completed the task: a repeat of complete. */
export function fenceCompleted(row: FencedRow, fence: Fence): boolean {
  return (
    row.org_id === fence.orgId &&
    row.status === "succeeded" &&
    row.attempt === fence.attempt &&
    row.lease_token === fence.leaseToken
  );
}

/** The org of a task, or null when there is no such task (for refusals only). */
export async function taskOrgOf(db: Db, p: { taskId: string }): Promise<string | null> {
  const [row] = await db`SELECT org_id FROM state.tasks WHERE id = ${p.taskId}`;
  return typeof row?.org_id === "string" ? row.org_id : null;
}

/** Marks a locked, fenced task succeeded; returns the database's time of it. */
export async function taskMarkSucceeded(db: Db, p: { taskId: string }): Promise<Date> {
  const [row] = await db`
    UPDATE state.tasks SET status = 'succeeded', finished_at = now(), updated_at = now()
    WHERE id = ${p.taskId} RETURNING finished_at`;
  const at = row?.finished_at;
  if (!(at instanceof Date)) throw new Error(`task ${p.taskId} vanished while locked`);
  return at;
}

/** Fails the attempt that holds `fence` for good (e.g. its payload breaks the contract). */
export async function taskMarkFailed(
  db: Db,
  p: Omit<Fence, "orgId"> & { error: string },
): Promise<boolean> {
  const rows = await db`
    UPDATE state.tasks SET status = 'failed', last_error = ${p.error}, finished_at = now(), updated_at = now()
    WHERE id = ${p.taskId} AND attempt = ${p.attempt} AND lease_token = ${p.leaseToken} AND status = 'running'
    RETURNING id`;
  return rows.length === 1;
}

/** Inserts tasks in `queued`; returns their ids in the order given. */
export async function taskInsertMany(
  db: Db,
  p: { orgId: string; payloads: readonly unknown[] },
): Promise<string[]> {
  const json = p.payloads.map((payload) => JSON.stringify(payload));
  const rows = await db`
    INSERT INTO state.tasks (org_id, payload)
    SELECT ${p.orgId}, payload FROM unnest(${json}::text[]::jsonb[]) WITH ORDINALITY AS u(payload, n)
    ORDER BY n
    RETURNING id::text AS id`;
  return rows.map((r) => String(r.id));
}

/**
 * The reaper's statement: `running` tasks whose lease expired and that were
 * not yet woken for this expiry get one `task_wakeup` outbox row each.
 */
export async function leaseReapExpired(db: Db, p: { limit: number }): Promise<number> {
  const [row] = await db`
    WITH due AS (
      SELECT id FROM state.tasks
      WHERE status = 'running' AND lease_expires_at <= now()
        AND reaped_expiry IS DISTINCT FROM lease_expires_at
      ORDER BY lease_expires_at
      LIMIT ${p.limit}
      FOR UPDATE SKIP LOCKED
    ), marked AS (
      UPDATE state.tasks t SET reaped_expiry = t.lease_expires_at
      FROM due WHERE t.id = due.id
      RETURNING t.id, t.attempt
    ), inserted AS (
      INSERT INTO state.outbox (queue_name, payload, task_id, attempt)
      SELECT 'task_wakeup', jsonb_build_object('task_id', id::text), id, attempt FROM marked
      RETURNING id
    ), notified AS (
      SELECT pg_notify(${OUTBOX_CHANNEL}, '') WHERE EXISTS (SELECT 1 FROM inserted)
    )
    SELECT (SELECT count(*)::int FROM inserted) AS n, (SELECT count(*)::int FROM notified) AS notified`;
  return Number(row?.n ?? 0);
}

/** Task counts by status (every status present, zero when none). */
export async function taskCountByStatus(db: Db): Promise<Record<string, number>> {
  const rows =
    await db`SELECT status::text AS status, count(*)::int AS n FROM state.tasks GROUP BY status`;
  const counts: Record<string, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
  for (const r of rows) counts[String(r.status)] = Number(r.n);
  return counts;
}
