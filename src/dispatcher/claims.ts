import type { Db } from "../db/connect";
import { Coalescer } from "../queue/pg/coalesce";
import { type ClaimOutcome, taskClaim, taskClaimMany } from "./sql/claim";

/**
 * Concurrent claims merged into one statement (./sql/claim.ts `taskClaimMany`):
 * a claim made while another claim statement runs waits for it and goes with
 * the others that came meanwhile. Each keeps its own outcome, decided as a
 * claim of its own would be. A task asked for twice in one batch is claimed
 * by the first ask; the repeat goes in a statement after it (and finds the
 * lease live). Should a merged statement fail, each of its claims is retried
 * alone, so one claim's failure is never another's.
 */

export type Claimer = (taskId: string) => Promise<ClaimOutcome>;

const CLAIMS_IN_FLIGHT = 1;
const CLAIMS_MERGED_MAX = 64;

export function claimBatcher(db: Db, rules: { leaseMs: number; maxAttempts: number }): Claimer {
  const coalescer = new Coalescer<string, ClaimOutcome>({
    run: (ids) => claimDistinct(db, ids, rules),
    weight: () => 1,
    maxWeight: CLAIMS_MERGED_MAX,
    maxInFlight: CLAIMS_IN_FLIGHT,
  });
  return (taskId) => coalescer.submit(taskId);
}

/** Distinct tasks in one statement; should it fail (nothing of it committed), each alone. */
async function claimEach(
  db: Db,
  taskIds: string[],
  rules: { leaseMs: number; maxAttempts: number },
): Promise<ClaimOutcome[]> {
  const one = (taskId: string) => taskClaim(db, { taskId, ...rules });
  if (taskIds.length === 1) return [await one(taskIds[0] ?? "")];
  try {
    return await taskClaimMany(db, { taskIds, ...rules });
  } catch {
    return Promise.all(taskIds.map(one));
  }
}

/** The first ask for each task in one statement, repeats (case-insensitively the same id) after it. */
async function claimDistinct(
  db: Db,
  ids: readonly string[],
  rules: { leaseMs: number; maxAttempts: number },
): Promise<ClaimOutcome[]> {
  const seen = new Set<string>();
  const firsts: number[] = [];
  const repeats: number[] = [];
  ids.forEach((id, i) => {
    const k = id.toLowerCase();
    if (seen.has(k)) repeats.push(i);
    else {
      seen.add(k);
      firsts.push(i);
    }
  });
  const out = new Array<ClaimOutcome | undefined>(ids.length);
  const got = await claimEach(
    db,
    firsts.map((i) => ids[i] ?? ""),
    rules,
  );
  firsts.forEach((i, j) => {
    out[i] = got[j];
  });
  if (repeats.length > 0) {
    const more = await claimDistinct(
      db,
      repeats.map((i) => ids[i] ?? ""),
      rules,
    );
    repeats.forEach((i, j) => {
      out[i] = more[j];
    });
  }
  return out.map((o, i) => {
    if (o === undefined) throw new Error(`no outcome for the claim of ${ids[i]}`);
    return o;
  });
}
