CREATE SCHEMA "state";
--> statement-breakpoint
CREATE TYPE "state"."outbox_status" AS ENUM('pending', 'sent');--> statement-breakpoint
CREATE TYPE "state"."task_status" AS ENUM('queued', 'running', 'succeeded', 'failed');--> statement-breakpoint
CREATE TABLE "state"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"queue_name" text NOT NULL,
	"payload" jsonb NOT NULL,
	"status" "state"."outbox_status" DEFAULT 'pending' NOT NULL,
	"task_id" uuid,
	"attempt" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "state"."queue_messages" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"queue_name" text NOT NULL,
	"payload" jsonb NOT NULL,
	"available_at" timestamp with time zone DEFAULT now() NOT NULL,
	"receive_count" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "state"."tasks" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"org_id" text NOT NULL,
	"status" "state"."task_status" DEFAULT 'queued' NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"lease_token" uuid,
	"lease_expires_at" timestamp with time zone,
	"payload" jsonb NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "tasks_attempt_nonnegative" CHECK ("state"."tasks"."attempt" >= 0)
);
--> statement-breakpoint
CREATE INDEX "outbox_pending_idx" ON "state"."outbox" USING btree ("id") WHERE "state"."outbox"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "outbox_task_idx" ON "state"."outbox" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "queue_messages_ready_idx" ON "state"."queue_messages" USING btree ("queue_name","available_at","id") WHERE "state"."queue_messages"."queue_name" NOT LIKE '%.dlq';--> statement-breakpoint
CREATE INDEX "queue_messages_dlq_idx" ON "state"."queue_messages" USING btree ("queue_name","id") WHERE "state"."queue_messages"."queue_name" LIKE '%.dlq';--> statement-breakpoint
CREATE INDEX "tasks_running_lease_idx" ON "state"."tasks" USING btree ("lease_expires_at") WHERE "state"."tasks"."status" = 'running';--> statement-breakpoint
CREATE INDEX "tasks_status_idx" ON "state"."tasks" USING btree ("status");