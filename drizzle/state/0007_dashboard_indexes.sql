DROP INDEX "state"."tasks_status_idx";--> statement-breakpoint
CREATE INDEX "tasks_status_created_idx" ON "state"."tasks" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "tasks_org_status_created_idx" ON "state"."tasks" USING btree ("org_id","status","created_at","id");--> statement-breakpoint
CREATE INDEX "tasks_finished_idx" ON "state"."tasks" USING btree ("finished_at") WHERE "state"."tasks"."finished_at" IS NOT NULL;