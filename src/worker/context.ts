import type { Background } from "../background";
import type { Dependency, GiveUp } from "../give-up";
import type { Logger } from "../log";
import type { ObjectStore } from "../objectstore/store";
import type { Message, QueueConsumer } from "../queue/seam";
import type { DispatcherClient } from "./client";
import type { ExecPlan } from "./exec/setup";

/**
 * What a worker works with. It reaches the state database only through its
 * `task_wakeup` consumer, and tasks only through the dispatcher's API: it
 * holds no database handle at all.
 */
export interface WorkerContext {
  queue: QueueConsumer<"task_wakeup">;
  /** Where the queue is, as the give-up line and the logs name it. */
  queueAt: Dependency;
  store: ObjectStore;
  client: DispatcherClient;
  leaseDurationMs: number;
  log: Logger;
  /** Told of every outage of the queue and the dispatcher; under `--until-idle` it ends the run. */
  giveUp: GiveUp;
  /** `harness worker --exec`: a task program does each attempt's work. */
  exec?: ExecContext | undefined;
  /**
   * Where a finished attempt's wakeup ack goes, so its slot is free at once
   * (the loop waits for them before it returns); without it, acks are awaited.
   */
  acks?: Background | undefined;
}

export interface ExecContext {
  plan: ExecPlan;
  /** The largest batch buffer-publish accepts (MAX_BATCH_BYTES). */
  maxBatchBytes: number;
  /** Buffer-publishes one attempt may make (MAX_BATCHES_PER_ATTEMPT). */
  maxBatches: number;
}

/** A received wakeup and the earliest time (epoch ms) its visibility timeout could end. */
export interface Wakeup {
  msg: Message<"task_wakeup">;
  hiddenUntil: number;
}

export type Outcome =
  | "succeeded" // published and completed, wakeup acked
  | "finished" // the task was already done: wakeup acked
  | "lease_active" // another worker holds the lease: wakeup left for later
  | "retry_pending" // the task waits for its retry's backoff: wakeup hidden until then
  | "not_found" // no such task: wakeup acked
  | "stale" // fenced out mid-task: nothing more published, wakeup left
  | "failed" // the attempt failed and told the dispatcher (retried after a backoff, or failed for good): wakeup acked
  | "refused" // another refusal (auth, validation): wakeup left with the reason
  | "abandoned" // stopped before the end: wakeup left to reappear
  | "error"; // an unexpected failure: wakeup left with the reason

export interface TaskResult {
  outcome: Outcome;
  attempt?: number;
  alerts?: number;
  bytes?: number;
  /** Why the attempt failed, when it did. */
  reason?: string;
}
