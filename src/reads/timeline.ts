import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * What a task's page shows beside the task row: its attempts
 * (`state.task_attempts`, by primary key), its outbox rows (`outbox_task_idx`)
 * and the batches the sink committed for it (`data.sink_batches`,
 * `sink_batches_task_idx`). Each is bounded: a task has at most
 * MAX_ATTEMPTS attempts and MAX_BATCHES_PER_ATTEMPT batches per attempt.
 */

export const TIMELINE_LIMIT = 500;

const AttemptRow = v.object({
  attempt: v.number(),
  lease_token: v.string(),
  claimed_at: v.date(),
  /** How the attempt ended, as the dispatcher recorded it; null while it runs (or from before it did). */
  ended_at: v.nullable(v.date()),
  outcome: v.nullable(v.string()),
  reason: v.nullable(v.string()),
});
export type AttemptRow = v.InferOutput<typeof AttemptRow>;

/** The task's attempts in order. */
export async function taskAttemptsOf(
  db: Db,
  p: { taskId: string; limit?: number },
): Promise<AttemptRow[]> {
  const rows = await db`
    SELECT attempt, lease_token::text AS lease_token, claimed_at, ended_at, outcome::text AS outcome, reason
    FROM state.task_attempts WHERE task_id = ${p.taskId}::uuid
    ORDER BY attempt
    LIMIT ${p.limit ?? TIMELINE_LIMIT}`;
  return v.parse(v.array(AttemptRow), [...rows]);
}

const OutboxRow = v.object({
  id: v.string(),
  queue_name: v.string(),
  status: v.string(),
  attempt: v.nullable(v.number()),
  created_at: v.date(),
  sent_at: v.nullable(v.date()),
  batch_uri: v.nullable(v.string()),
  batch_size_bytes: v.nullable(v.number()),
});
export type OutboxRow = v.InferOutput<typeof OutboxRow>;

/** Every outbox row the task's calls (and the reaper, for it) wrote, oldest first. */
export async function taskOutboxOf(
  db: Db,
  p: { taskId: string; limit?: number },
): Promise<OutboxRow[]> {
  const rows = await db`
    SELECT id::text AS id, queue_name, status::text AS status, attempt, created_at, sent_at,
           payload->>'batch_uri' AS batch_uri, (payload->>'batch_size_bytes')::float8 AS batch_size_bytes
    FROM state.outbox WHERE task_id = ${p.taskId}::uuid
    ORDER BY id
    LIMIT ${p.limit ?? TIMELINE_LIMIT}`;
  return v.parse(v.array(OutboxRow), [...rows]);
}

const BatchRow = v.object({
  id: v.string(),
  attempt: v.number(),
  batch_uri: v.string(),
  rows_inserted: v.number(),
  rows_skipped: v.number(),
  committed_at: v.date(),
});
export type BatchRow = v.InferOutput<typeof BatchRow>;

/** The batches of the task the sink committed (DATA database), oldest first. */
export async function sinkBatchesOf(
  db: Db,
  p: { taskId: string; limit?: number },
): Promise<BatchRow[]> {
  const rows = await db`
    SELECT id::text AS id, attempt, batch_uri, rows_inserted, rows_skipped, committed_at
    FROM data.sink_batches WHERE task_id = ${p.taskId}::uuid
    ORDER BY id
    LIMIT ${p.limit ?? TIMELINE_LIMIT}`;
  return v.parse(v.array(BatchRow), [...rows]);
}
