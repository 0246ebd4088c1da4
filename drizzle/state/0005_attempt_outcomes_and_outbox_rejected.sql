CREATE TYPE "state"."attempt_outcome" AS ENUM('completed', 'failed', 'fenced', 'expired');--> statement-breakpoint
ALTER TYPE "state"."outbox_status" ADD VALUE 'rejected';--> statement-breakpoint
ALTER TABLE "state"."outbox" ADD COLUMN "available_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "state"."outbox" ADD COLUMN "error" text;--> statement-breakpoint
ALTER TABLE "state"."task_attempts" ADD COLUMN "ended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "state"."task_attempts" ADD COLUMN "outcome" "state"."attempt_outcome";--> statement-breakpoint
ALTER TABLE "state"."task_attempts" ADD COLUMN "reason" text;--> statement-breakpoint
ALTER TABLE "state"."tasks" ADD COLUMN "attempt_batches" uuid[] DEFAULT '{}' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_batch_once_idx" ON "state"."outbox" USING btree ("task_id","attempt",("payload"->>'batch_uri')) WHERE "state"."outbox"."queue_name" = 'buffer_queue';