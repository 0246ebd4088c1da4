import * as v from "valibot";

/**
 * The dashboard's JSON API, as valibot schemas: the server builds these
 * shapes and the browser parses every answer with them. Times are ISO 8601
 * strings. Imported by the browser bundle too, so nothing here touches the
 * server.
 */

const Iso = v.string();
const Int = v.number();

export const Count = v.object({ n: Int, exact: v.boolean() });
export type Count = v.InferOutput<typeof Count>;

export const QueueRow = v.object({
  queue: v.string(),
  ready: Int,
  in_flight: Int,
  delayed: Int,
  dead: Int,
});

export const Overview = v.object({
  at: Iso,
  tasks: v.record(v.string(), Count),
  queues: v.array(QueueRow),
  outbox: v.object({ pending: Count }),
  alerts: v.object({ rows: Count }),
  throughput: v.object({
    bucket_seconds: Int,
    /** Per-bucket totals, oldest first, the last bucket holding now; null: not read yet. */
    finished: v.array(v.nullable(Int)),
    rows: v.array(v.nullable(Int)),
  }),
  roles: v.array(v.object({ role: v.string(), sessions: Int })),
});
export type Overview = v.InferOutput<typeof Overview>;

export const TaskItem = v.object({
  id: v.string(),
  org_id: v.string(),
  status: v.string(),
  attempt: Int,
  created_at: Iso,
  updated_at: Iso,
  finished_at: v.nullable(Iso),
  lease_expires_at: v.nullable(Iso),
  lease_expired: v.boolean(),
  last_error: v.nullable(v.string()),
});
export type TaskItem = v.InferOutput<typeof TaskItem>;

export const TaskList = v.object({
  at: Iso,
  tasks: v.array(TaskItem),
  /** Opaque: pass back as `after` for the next page; null on the last page. */
  next: v.nullable(v.string()),
});
export type TaskList = v.InferOutput<typeof TaskList>;

export const OUTCOMES = ["running", "completed", "fenced", "expired", "failed", "unknown"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const TimelineEvent = v.object({
  at: v.nullable(Iso),
  kind: v.picklist(["claim", "heartbeat", "publish", "wakeup", "ingest", "end"]),
  text: v.string(),
});
export type TimelineEvent = v.InferOutput<typeof TimelineEvent>;

export const AttemptView = v.object({
  attempt: Int,
  lease_token: v.string(),
  claimed_at: Iso,
  ended_at: v.nullable(Iso),
  outcome: v.picklist(OUTCOMES),
  /** `recorded` when state.task_attempts says how it ended; `derived` from the other tables. */
  outcome_source: v.picklist(["recorded", "derived"]),
  reason: v.nullable(v.string()),
  lease_expires_at: v.nullable(Iso),
  batches_published: Int,
  rows_ingested: Int,
  /** Outbox rows of this attempt written after the next attempt's claim: always 0 (invariant 2). */
  writes_after_fence: v.nullable(Int),
  events: v.array(TimelineEvent),
});
export type AttemptView = v.InferOutput<typeof AttemptView>;

export const OutboxView = v.object({
  id: v.string(),
  queue: v.string(),
  status: v.string(),
  attempt: v.nullable(Int),
  created_at: Iso,
  sent_at: v.nullable(Iso),
  batch_uri: v.nullable(v.string()),
  batch_size_bytes: v.nullable(Int),
});

export const BatchView = v.object({
  id: v.string(),
  attempt: Int,
  batch_uri: v.string(),
  rows_inserted: Int,
  rows_skipped: Int,
  committed_at: Iso,
});

export const TaskDetail = v.object({
  at: Iso,
  task: v.object({
    id: v.string(),
    org_id: v.string(),
    status: v.string(),
    attempt: Int,
    lease_expires_at: v.nullable(Iso),
    lease_expired: v.boolean(),
    last_error: v.nullable(v.string()),
    created_at: Iso,
    updated_at: Iso,
    finished_at: v.nullable(Iso),
  }),
  payload: v.object({
    bytes: Int,
    keys: v.array(v.string()),
    alerts: v.nullable(Int),
    work_ms: v.nullable(Int),
    preview: v.string(),
    truncated: v.boolean(),
  }),
  attempts: v.array(AttemptView),
  outbox: v.array(OutboxView),
  batches: v.array(BatchView),
});
export type TaskDetail = v.InferOutput<typeof TaskDetail>;

export const DeadLetterView = v.object({
  id: v.string(),
  task_id: v.nullable(v.string()),
  receive_count: Int,
  created_at: Iso,
});
export type DeadLetterView = v.InferOutput<typeof DeadLetterView>;

export const DlqGroup = v.object({
  queue: v.string(),
  /** The reason with its particulars (ids, numbers, quoted values) blanked, shared by the group. */
  reason: v.string(),
  count: Int,
  receives: v.object({ min: Int, max: Int }),
  sample: v.object({
    id: v.string(),
    reason: v.string(),
    payload: v.string(),
    created_at: Iso,
  }),
  letters: v.array(DeadLetterView),
});
export type DlqGroup = v.InferOutput<typeof DlqGroup>;

export const Dlq = v.object({
  at: Iso,
  groups: v.array(DlqGroup),
  /** Dead letters per queue (all of them), and how many were listed here. */
  dead: v.record(v.string(), Int),
  listed: Int,
});
export type Dlq = v.InferOutput<typeof Dlq>;

export const Session = v.object({ csrf: v.string() });

export const RedriveRequest = v.strictObject({
  queue: v.picklist(["task_wakeup", "buffer_queue", "task_completed"]),
  /** One letter... */
  id: v.optional(v.pipe(v.string(), v.regex(/^\d{1,19}$/))),
  /** ...or every listed letter of the queue with this (blanked) reason. */
  reason: v.optional(v.pipe(v.string(), v.maxLength(2000))),
});
export type RedriveRequest = v.InferOutput<typeof RedriveRequest>;

export const RedriveResult = v.object({ moved: Int });

export const ApiError = v.object({ error: v.string(), message: v.string() });
