/** Capped exponential backoff with jitter. */

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, capMs: 2_000 };

/** The delay before retry number `n` (0-based): between half and all of min(cap, base·2ⁿ). */
export function backoffDelay(policy: BackoffPolicy, n: number, random = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(n, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
