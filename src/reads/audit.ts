import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * Read-only queries the invariant checker runs at the end of a pipeline.
 * They read every role's tables, and change nothing. Times that fencing is
 * judged by come as microseconds since the epoch (`*_us`), the database's
 * own precision (exact in a float8): a Date's milliseconds could make two
 * moments look equal.
 */

const TaskRow = v.object({
  id: v.string(),
  org_id: v.string(),
  status: v.picklist(["queued", "running", "succeeded", "failed"]),
  attempt: v.number(),
  payload: v.unknown(),
  last_error: v.nullable(v.string()),
});
export type AuditTask = v.InferOutput<typeof TaskRow>;

export async function auditTasks(state: Db, p: { orgId: string }): Promise<AuditTask[]> {
  const rows = await state`
    SELECT id::text AS id, org_id, status::text AS status, attempt, payload, last_error
    FROM state.tasks WHERE org_id = ${p.orgId} ORDER BY id`;
  return v.parse(v.array(TaskRow), [...rows]);
}

const AlertRow = v.object({ dedupe_key: v.string(), org_id: v.string(), task_id: v.string() });
export type AuditAlert = v.InferOutput<typeof AlertRow>;

export async function auditAlerts(
  data: Db,
  p: { taskIds: readonly string[]; orgId: string },
): Promise<AuditAlert[]> {
  const rows = await data`
    SELECT dedupe_key, org_id, task_id::text AS task_id FROM data.alert_events
    WHERE task_id = ANY(${p.taskIds}::uuid[]) OR org_id = ${p.orgId}`;
  return v.parse(v.array(AlertRow), [...rows]);
}

const OutboxRow = v.object({
  id: v.string(),
  queue_name: v.string(),
  task_id: v.nullable(v.string()),
  attempt: v.nullable(v.number()),
  status: v.string(),
  created_us: v.number(),
});
export type AuditOutbox = v.InferOutput<typeof OutboxRow>;

export async function auditOutbox(
  state: Db,
  p: { taskIds: readonly string[] },
): Promise<AuditOutbox[]> {
  const rows = await state`
    SELECT id::text AS id, queue_name, task_id::text AS task_id, attempt, status::text AS status,
           (extract(epoch FROM created_at) * 1000000)::float8 AS created_us
    FROM state.outbox WHERE task_id = ANY(${p.taskIds}::uuid[])`;
  return v.parse(v.array(OutboxRow), [...rows]);
}

const AttemptRow = v.object({
  task_id: v.string(),
  attempt: v.number(),
  claimed_us: v.number(),
  ended_us: v.nullable(v.number()),
  outcome: v.nullable(v.picklist(["completed", "failed", "fenced", "expired"])),
});
export type AuditAttempt = v.InferOutput<typeof AttemptRow>;

export async function auditAttempts(
  state: Db,
  p: { taskIds: readonly string[] },
): Promise<AuditAttempt[]> {
  const rows = await state`
    SELECT task_id::text AS task_id, attempt, outcome::text AS outcome,
           (extract(epoch FROM claimed_at) * 1000000)::float8 AS claimed_us,
           (extract(epoch FROM ended_at) * 1000000)::float8 AS ended_us
    FROM state.task_attempts
    WHERE task_id = ANY(${p.taskIds}::uuid[])`;
  return v.parse(v.array(AttemptRow), [...rows]);
}

/** Payloads of buffer_queue outbox rows already published, oldest first (to replay as duplicates). */
export async function auditSentBufferPayloads(
  state: Db,
  p: { taskIds: readonly string[] },
): Promise<unknown[]> {
  const rows = await state`
    SELECT payload FROM state.outbox
    WHERE queue_name = 'buffer_queue' AND status = 'sent' AND task_id = ANY(${p.taskIds}::uuid[])
    ORDER BY id`;
  return rows.map((r) => r.payload);
}

const Progress = v.object({ finished: v.number(), pending: v.number() });

/**
 * Tasks of the org that finished, and outbox rows still to publish for them.
 * What the queues still hold is read through the queue seam
 * (src/verify/queues.ts): the queues may not be in this database.
 */
export async function auditProgress(state: Db, p: { orgId: string; taskIds: readonly string[] }) {
  const [row] = await state`
    SELECT
      (SELECT count(*) FROM state.tasks WHERE org_id = ${p.orgId} AND status IN ('succeeded', 'failed'))::int AS finished,
      (SELECT count(*) FROM state.outbox WHERE status = 'pending' AND task_id = ANY(${p.taskIds}::uuid[]))::int AS pending`;
  return v.parse(Progress, row);
}

const OrgProgress = v.object({ total: v.number(), finished: v.number(), pending: v.number() });

/**
 * Every task of the org (also ones whose creation's answer was lost), how
 * many finished, and outbox rows still to publish for them (the queues: as
 * for auditProgress).
 */
export async function auditOrgProgress(state: Db, p: { orgId: string }) {
  const [row] = await state`
    WITH org AS (SELECT id, status FROM state.tasks WHERE org_id = ${p.orgId})
    SELECT
      (SELECT count(*) FROM org)::int AS total,
      (SELECT count(*) FROM org WHERE status IN ('succeeded', 'failed'))::int AS finished,
      (SELECT count(*) FROM state.outbox o JOIN org ON org.id = o.task_id WHERE o.status = 'pending')::int AS pending`;
  return v.parse(OrgProgress, row);
}
