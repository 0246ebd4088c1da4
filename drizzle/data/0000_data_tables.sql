CREATE SCHEMA "data";
--> statement-breakpoint
CREATE TYPE "data"."severity" AS ENUM('info', 'low', 'medium', 'high', 'critical');--> statement-breakpoint
CREATE TABLE "data"."alert_events" (
	"dedupe_key" text PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"task_id" uuid NOT NULL,
	"source" text NOT NULL,
	"severity" "data"."severity" NOT NULL,
	"title" text NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"attributes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"ingested_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "data"."sink_batches" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"task_id" uuid NOT NULL,
	"org_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"batch_uri" text NOT NULL,
	"rows_inserted" integer NOT NULL,
	"rows_skipped" integer NOT NULL,
	"committed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "alert_events_task_idx" ON "data"."alert_events" USING btree ("task_id");--> statement-breakpoint
CREATE INDEX "alert_events_org_idx" ON "data"."alert_events" USING btree ("org_id");--> statement-breakpoint
CREATE INDEX "sink_batches_task_idx" ON "data"."sink_batches" USING btree ("task_id");