import type { Db } from "../db/connect";
import { mergedCalls } from "./merge";
import type { Fence } from "./sql/fence";
import { leaseRenew, leaseRenewMany } from "./sql/tasks";

/**
 * Concurrent heartbeats merged into one statement (./sql/tasks.ts
 * `leaseRenewMany`, merged by ./merge.ts): each call is fenced against its
 * own task row by the one fence (./sql/fence.ts) and gets its own new expiry,
 * or none when the fence did not hold.
 */

export type Renewer = (f: Fence) => Promise<Date | null>;

export function renewBatcher(db: Db, leaseMs: number): Renewer {
  return mergedCalls<Fence, Date | null>({
    taskOf: (f) => f.taskId,
    many: (fences) => leaseRenewMany(db, { fences, leaseMs }),
    one: (f) => leaseRenew(db, { ...f, leaseMs }),
    maxInFlight: 2,
    maxMerged: 64,
  });
}
