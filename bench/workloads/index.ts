import { dispatcherClaim, dispatcherHeartbeat } from "./dispatcher";
import { e2eLarge, e2eSmall } from "./e2e";
import { queueBatched, queueSingle } from "./queue";
import { sinkDuplicates, sinkIngest, sinkRetried } from "./sink";
import type { Workload } from "./types";

/** Every workload, in the order the table shows them. Workloads 1–5 of issue 8. */
export const WORKLOADS: readonly Workload[] = [
  queueSingle,
  queueBatched,
  sinkIngest,
  sinkDuplicates,
  sinkRetried,
  dispatcherHeartbeat,
  dispatcherClaim,
  e2eSmall,
  e2eLarge,
];

/** Workloads whose id or group is named; all when none is. */
export function selectWorkloads(names: readonly string[]): Workload[] {
  if (names.length === 0) return [...WORKLOADS];
  const unknown = names.filter((n) => !WORKLOADS.some((w) => w.id === n || w.group === n));
  if (unknown.length > 0) {
    const known = [...new Set(WORKLOADS.flatMap((w) => [w.group, w.id]))].join(", ");
    throw new Error(`unknown workload ${unknown.join(", ")} (known: ${known})`);
  }
  return WORKLOADS.filter((w) => names.includes(w.id) || names.includes(w.group));
}
