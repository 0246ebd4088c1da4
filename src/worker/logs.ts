/** The worker's log messages that tests and operators wait for: match on these, never on a copy. */
export const WORKER_LOG = {
  started: "worker started",
  stopped: "worker stopped",
  /** A claim succeeded (fields: task_id, attempt, lease_expires_at). */
  claimed: "claimed",
  /** One wakeup handled (fields: task_id, attempt, outcome, ms). */
  task: "task",
  /** A done attempt's wakeup ack failed; it comes back and is acked then (fields: message_id, task_id, err). */
  ackFailed: "could not ack the wakeup of a done attempt; it will come back",
  heartbeatRefused: "heartbeat refused",
  fencedOut: "fenced out, stopping this attempt",
  /** An attempt failed and says so to the dispatcher (fields: reason, retryable). */
  attemptFailed: "attempt failed",
  dispatcherUnavailable: "dispatcher unavailable, retrying",
  /** The dispatcher answered again after an outage (fields: failures, down_ms). */
  dispatcherBack: "dispatcher reachable again",
  /** Receiving or counting wakeups failed (fields: dependency, where, failures, down_ms). */
  queueUnavailable: "task_wakeup unavailable, retrying",
  queueBack: "task_wakeup reachable again",
  /** (debug) What `--until-idle` saw: state busy, quiet or stalled, queue depth and backlog. */
  pipeline: "pipeline",
  stopping: "stopping: no new tasks, finishing in-flight ones",
  abandoning: "second signal: abandoning in-flight tasks",
} as const;
