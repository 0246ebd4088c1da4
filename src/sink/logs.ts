/** The sink's log messages that tests and operators wait for: match on these, never on a copy. */
export const SINK_LOG = {
  /** Logged once the sink listens for publishes, before its first receive. */
  started: "sink started",
  stopped: "sink stopped",
  stopping: "stopping: finishing in-flight batches",
  /** Receiving or counting buffer messages failed (fields: dependency, where, failures, down_ms). */
  stateUnavailable: "buffer_queue unavailable, retrying",
  stateBack: "buffer_queue reachable again",
  /** (debug) A batch in hand (fields: message_id, task_id, attempt, receive_count). */
  received: "batch received",
  ingested: "batch ingested",
  /** A committed batch's ack failed; it is redelivered and adds nothing (fields: message_id, task_id, err). */
  notAcked: "batch committed but not acked; it will be redelivered",
  deadLettered: "batch dead-lettered",
  retried: "batch failed, will be retried",
  /** A statement writing several small batches failed; each is written alone (fields: batches, rows, and the SQLSTATE as code, else err). */
  groupFailed: "group of batches failed, writing each alone",
} as const;
