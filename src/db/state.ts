import { sql } from "drizzle-orm";
import {
  bigserial,
  check,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/** STATE database: tasks, the queue, the outbox. The single source of these tables. */
export const state = pgSchema("state");

export const taskStatus = state.enum("task_status", ["queued", "running", "succeeded", "failed"]);
/** `rejected`: the row broke its queue's contract; never published, never retried. */
export const outboxStatus = state.enum("outbox_status", ["pending", "sent", "rejected"]);
/** How an attempt ended: `fenced` when a newer attempt was claimed over its expired lease. */
export const attemptOutcome = state.enum("attempt_outcome", [
  "completed",
  "failed",
  "fenced",
  "expired",
]);

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

export const tasks = state.table(
  "tasks",
  {
    id: uuid("id").primaryKey().default(sql`gen_random_uuid()`),
    orgId: text("org_id").notNull(),
    status: taskStatus("status").notNull().default("queued"),
    attempt: integer("attempt").notNull().default(0),
    leaseToken: uuid("lease_token"),
    leaseExpiresAt: tz("lease_expires_at"),
    payload: jsonb("payload").notNull(),
    lastError: text("last_error"),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    finishedAt: tz("finished_at"),
    /** The lease expiry the reaper last woke this task for: one wakeup per expiry. */
    reapedExpiry: tz("reaped_expiry"),
    /**
     * The batches the current attempt published (md5 of each distinct
     * batch_uri; reset at each claim), at most MAX_BATCHES_PER_ATTEMPT. On the
     * task row, so the fenced statement that appends to it re-reads it under
     * its row lock: the count and the repeat check are exact under concurrent calls.
     */
    attemptBatches: uuid("attempt_batches").array().notNull().default(sql`'{}'`),
    /**
     * A task queued again by a retryable fail is not claimed before this time
     * (the database clock; its wakeup is published hidden until then). Null
     * otherwise. Not indexed, like every column a claim or heartbeat changes.
     */
    retryAt: tz("retry_at"),
    /**
     * When the reaper's sweep last wrote this `queued` task a fresh wakeup
     * (src/dispatcher/sql/sweep.ts): at most one per sweep period. Not
     * indexed: the sweep finds queued tasks by tasks_status_created_idx.
     */
    sweptAt: tz("swept_at"),
  },
  (t) => [
    // Running tasks for the reaper. Not on lease_expires_at: a heartbeat changes only
    // that column, and no index on it keeps heartbeats cheap in-place (HOT) updates.
    index("tasks_running_idx").on(t.id).where(sql`${t.status} = 'running'`),
    // The dashboard's task list, newest first, by status and by org and status (keyset
    // pages); also counts by status. A status change is never a HOT update anyway.
    index("tasks_status_created_idx").on(t.status, t.createdAt, t.id),
    index("tasks_org_status_created_idx").on(t.orgId, t.status, t.createdAt, t.id),
    // Tasks finished per second for the dashboard's throughput chart: only finished rows.
    index("tasks_finished_idx").on(t.finishedAt).where(sql`${t.finishedAt} IS NOT NULL`),
    check("tasks_attempt_nonnegative", sql`${t.attempt} >= 0`),
  ],
);

export const queueMessages = state.table(
  "queue_messages",
  {
    id: bigserial("id", { mode: "bigint" }).primaryKey(),
    queueName: text("queue_name").notNull(),
    payload: jsonb("payload").notNull(),
    availableAt: tz("available_at").notNull().defaultNow(),
    receiveCount: integer("receive_count").notNull().default(0),
    lastError: text("last_error"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [
    // Ready messages of a live queue, in the order receive takes them.
    index("queue_messages_ready_idx")
      .on(t.queueName, t.availableAt, t.id)
      .where(sql`${t.queueName} NOT LIKE '%.dlq'`),
    index("queue_messages_dlq_idx").on(t.queueName, t.id).where(sql`${t.queueName} LIKE '%.dlq'`),
  ],
);

export const outbox = state.table(
  "outbox",
  {
    id: bigserial("id", { mode: "bigint" }).primaryKey(),
    queueName: text("queue_name").notNull(),
    payload: jsonb("payload").notNull(),
    status: outboxStatus("status").notNull().default("pending"),
    /** The task and attempt whose call wrote this row (null for task creation). */
    taskId: uuid("task_id"),
    attempt: integer("attempt"),
    createdAt: tz("created_at").notNull().defaultNow(),
    sentAt: tz("sent_at"),
    /** The message is published hidden until then (null: visible at once). */
    availableAt: tz("available_at"),
    /** Why the row was rejected. */
    error: text("error"),
  },
  (t) => [
    index("outbox_pending_idx").on(t.id).where(sql`${t.status} = 'pending'`),
    // Rejected rows are few: this keeps counting them (`status`) off a scan of the outbox.
    // "Neither pending nor sent" rather than `= 'rejected'`: a fresh database migrates in
    // one transaction, where PostgreSQL refuses the enum value the same transaction added.
    index("outbox_rejected_idx").on(t.id).where(sql`${t.status} NOT IN ('pending', 'sent')`),
    index("outbox_task_idx").on(t.taskId),
    // One row per batch of an attempt: a repeated buffer-publish inserts nothing.
    uniqueIndex("outbox_batch_once_idx")
      .on(t.taskId, t.attempt, sql`(${t.payload}->>'batch_uri')`)
      .where(sql`${t.queueName} = 'buffer_queue'`),
  ],
);

/**
 * Capability signing keys generated by a dispatcher when none is configured,
 * so a restarted or second dispatcher signs with the same key and still
 * accepts the tokens already issued. The newest row signs; every row verifies.
 */
export const signingKeys = state.table("signing_keys", {
  kid: text("kid").primaryKey(),
  privateJwk: jsonb("private_jwk").notNull(),
  createdAt: tz("created_at").notNull().defaultNow(),
});

/**
 * One row per claim: which attempt got which lease when, and how it ended.
 * The invariant checker uses it to prove that no fenced attempt wrote
 * anything after the next attempt was claimed; the dashboard shows it as
 * the task's timeline.
 */
export const taskAttempts = state.table(
  "task_attempts",
  {
    taskId: uuid("task_id").notNull(),
    attempt: integer("attempt").notNull(),
    leaseToken: uuid("lease_token").notNull(),
    claimedAt: tz("claimed_at").notNull().defaultNow(),
    endedAt: tz("ended_at"),
    outcome: attemptOutcome("outcome"),
    /** A failure's reason, or why the attempt was fenced or expired. */
    reason: text("reason"),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt] })],
);
