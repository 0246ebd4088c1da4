-- Dedupe keys are scoped to their org: the primary key becomes (org_id, dedupe_key).
-- Every existing row is kept: keys unique alone are unique within their org too.
-- The new key leads with org_id, so it serves by-org lookups and the org index goes.
ALTER TABLE "data"."alert_events" DROP CONSTRAINT "alert_events_pkey";--> statement-breakpoint
ALTER TABLE "data"."alert_events" ADD CONSTRAINT "alert_events_pkey" PRIMARY KEY("org_id","dedupe_key");--> statement-breakpoint
DROP INDEX "data"."alert_events_org_idx";
