import { sql } from "drizzle-orm";
import {
  bigserial,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/** DATA database: ingested alerts. The single source of these tables. */
export const data = pgSchema("data");

export const severity = data.enum("severity", ["info", "low", "medium", "high", "critical"]);

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "string" });

/**
 * Keyed by `(org_id, dedupe_key)`: a dedupe key is scoped to its org, so one
 * org's key never suppresses another org's row (invariant 6). The key's
 * leading `org_id` serves the by-org lookups too.
 */
export const alertEvents = data.table(
  "alert_events",
  {
    dedupeKey: text("dedupe_key").notNull(),
    orgId: text("org_id").notNull(),
    taskId: uuid("task_id").notNull(),
    source: text("source").notNull(),
    severity: severity("severity").notNull(),
    title: text("title").notNull(),
    occurredAt: tz("occurred_at").notNull(),
    attributes: jsonb("attributes").notNull().default(sql`'{}'::jsonb`),
    ingestedAt: tz("ingested_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "alert_events_pkey", columns: [t.orgId, t.dedupeKey] }),
    index("alert_events_task_idx").on(t.taskId),
  ],
);

/** One row per batch the sink committed: what `harness status` reports as inserted / skipped. */
export const sinkBatches = data.table(
  "sink_batches",
  {
    id: bigserial("id", { mode: "bigint" }).primaryKey(),
    taskId: uuid("task_id").notNull(),
    orgId: text("org_id").notNull(),
    attempt: integer("attempt").notNull(),
    batchUri: text("batch_uri").notNull(),
    rowsInserted: integer("rows_inserted").notNull(),
    rowsSkipped: integer("rows_skipped").notNull(),
    committedAt: tz("committed_at").notNull().defaultNow(),
  },
  (t) => [
    index("sink_batches_task_idx").on(t.taskId),
    // Rows ingested per second for the dashboard's throughput chart.
    index("sink_batches_committed_idx").on(t.committedAt),
  ],
);
