DROP INDEX "state"."tasks_running_lease_idx";--> statement-breakpoint
CREATE INDEX "tasks_running_idx" ON "state"."tasks" USING btree ("id") WHERE "state"."tasks"."status" = 'running';