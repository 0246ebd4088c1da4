CREATE TABLE "state"."task_attempts" (
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"lease_token" uuid NOT NULL,
	"claimed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "task_attempts_task_id_attempt_pk" PRIMARY KEY("task_id","attempt")
);
