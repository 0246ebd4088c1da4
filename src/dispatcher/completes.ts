import type { Db } from "../db/connect";
import { mergedCalls } from "./merge";
import { type CompleteCall, taskComplete, taskCompleteMany } from "./sql/complete";

/**
 * Concurrent completes merged into one statement (./sql/complete.ts
 * `taskCompleteMany`, merged by ./merge.ts): each call is fenced against its
 * own task row by the one fence (./sql/fence.ts), its batch (if it carries
 * one) capped on that row, and keeps its own outcome; a call refused here is
 * classified by its own fence read, as alone.
 */

export type Completer = (call: CompleteCall & { maxBatches: number }) => Promise<boolean>;

export function completeBatcher(db: Db, maxBatches: number): Completer {
  const merged = mergedCalls<CompleteCall, boolean>({
    taskOf: (c) => c.taskId,
    many: (calls) => taskCompleteMany(db, { calls, maxBatches }),
    one: (c) => taskComplete(db, { ...c, maxBatches }),
    // One statement at a time: the calls that come meanwhile go together in the next
    // (fewer, larger statements: 2.8 → 2.6 statements per task end to end).
    maxInFlight: 1,
    maxMerged: 64,
  });
  return (call) => {
    // The cap is the dispatcher's one MAX_BATCHES_PER_ATTEMPT; a call with another goes alone.
    if (call.maxBatches !== maxBatches) return taskComplete(db, call);
    return merged(call);
  };
}
