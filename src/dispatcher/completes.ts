import type { Db } from "../db/connect";
import { mergedCalls } from "./merge";
import type { Fence } from "./sql/fence";
import { taskComplete, taskCompleteMany } from "./sql/tasks";

/**
 * Concurrent completes merged into one statement (./sql/tasks.ts
 * `taskCompleteMany`, merged by ./merge.ts): each call is fenced against its
 * own task row by the one fence (./sql/fence.ts) and keeps its own outcome;
 * a call refused here is classified by its own fence read, as alone.
 */

export type Completer = (f: Fence) => Promise<boolean>;

export function completeBatcher(db: Db): Completer {
  return mergedCalls<Fence, boolean>({
    taskOf: (f) => f.taskId,
    many: (fences) => taskCompleteMany(db, fences),
    one: (f) => taskComplete(db, f),
    maxInFlight: 2,
    maxMerged: 64,
  });
}
