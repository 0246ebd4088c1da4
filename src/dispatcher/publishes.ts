import type { BufferMessage } from "../contracts/queue";
import type { Db } from "../db/connect";
import { mergedCalls } from "./merge";
import type { Fence } from "./sql/fence";
import { type PublishOutcome, taskPublishBatch, taskPublishBatchMany } from "./sql/tasks";

/**
 * Concurrent buffer-publishes merged into one statement (./sql/tasks.ts
 * `taskPublishBatchMany`, merged by ./merge.ts): each call is fenced against
 * its own task row by the one fence (./sql/fence.ts) and capped on it, and
 * keeps its own outcome. Two batches of one task never share a statement,
 * so the cap sees them one after the other, as alone.
 */

export type BatchPublisher = (
  call: Fence & { message: BufferMessage; maxBatches: number },
) => Promise<PublishOutcome>;

export function publishBatcher(db: Db, maxBatches: number): BatchPublisher {
  const merged = mergedCalls<Fence & { message: BufferMessage }, PublishOutcome>({
    taskOf: (c) => c.taskId,
    many: (calls) => taskPublishBatchMany(db, { calls, maxBatches }),
    one: (c) => taskPublishBatch(db, { ...c, maxBatches }),
    maxInFlight: 2,
    maxMerged: 64,
  });
  return (call) => {
    // The cap is the dispatcher's one MAX_BATCHES_PER_ATTEMPT; a call with another goes alone.
    if (call.maxBatches !== maxBatches) return taskPublishBatch(db, call);
    return merged(call);
  };
}
