import { sql } from "drizzle-orm";
import {
  bigserial,
  check,
  index,
  integer,
  jsonb,
  pgSchema,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/** STATE database: tasks, the queue, the outbox. The single source of these tables. */
export const state = pgSchema("state");

export const taskStatus = state.enum("task_status", ["queued", "running", "succeeded", "failed"]);
export const outboxStatus = state.enum("outbox_status", ["pending", "sent"]);

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
  },
  (t) => [
    index("tasks_running_lease_idx").on(t.leaseExpiresAt).where(sql`${t.status} = 'running'`),
    index("tasks_status_idx").on(t.status),
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
  },
  (t) => [
    index("outbox_pending_idx").on(t.id).where(sql`${t.status} = 'pending'`),
    index("outbox_task_idx").on(t.taskId),
  ],
);
