import { expect } from "bun:test";
import type { Db } from "../../src/db/connect";
import { FAILPOINT_LOG } from "../../src/failpoints";
import { prng } from "../../src/verify/chaos";
import { WORKER_LOG } from "../../src/worker/logs";
import type { Role } from "../support/processes";
import { waitFor } from "../support/wait";

/**
 * Helpers for the crash scenarios: proving that a role really died by
 * kill -9 (so a scenario cannot pass without its crash), seeded randomness
 * for "a random moment", and small probes of the state database.
 */

/** Waits for a role armed with `HARNESS_FAILPOINTS=<point>` to die there, and proves it did. */
export async function expectFailpointKill(role: Role, point: string, timeoutMs = 30_000) {
  const code = await waitFor(() => exitedCode(role), {
    what: `${role.name} to die at failpoint ${point}`,
    timeoutMs,
    intervalMs: 50,
  });
  expect(role.proc.signalCode).toBe("SIGKILL");
  expect(code).not.toBe(0);
  const fired = role.logs.find((l) => l.msg === FAILPOINT_LOG.fired);
  expect(fired).toMatchObject({ failpoint: point });
  return fired;
}

/** The exit code (signal deaths count) once the process has ended, else undefined. */
function exitedCode(role: Role): number | undefined {
  const p = role.proc;
  if (p.exitCode === null && p.signalCode === null) return undefined;
  return p.exitCode ?? 128 + 9;
}

/** kill -9 from outside, and proof that the process died of it. */
export async function killNine(role: Role): Promise<void> {
  expect(role.proc.exitCode).toBeNull();
  await role.stop("SIGKILL");
  expect(role.proc.signalCode).toBe("SIGKILL");
}

/** A seeded PRNG (the one `harness verify --chaos` uses), so "a random moment" can be replayed. */
export const seededRandom = prng;

/** The seed of this run: INVARIANT_SEED when set (to replay a failure), else a fresh one, printed. */
export function runSeed(label: string): number {
  const given = Number(process.env.INVARIANT_SEED);
  const seed = Number.isInteger(given) && given > 0 ? given : Math.floor(Math.random() * 2 ** 31);
  console.log(`${label}: seed ${seed} (replay with INVARIANT_SEED=${seed})`);
  return seed;
}

/** How many outbox rows the dispatchers have written for these tasks, and how many are pending. */
export async function outboxCounts(
  state: Db,
  ids: readonly string[],
): Promise<{ total: number; pending: number }> {
  const [row] = await state`
    SELECT count(*)::int AS total, (count(*) FILTER (WHERE status = 'pending'))::int AS pending
    FROM state.outbox WHERE task_id = ANY(${ids}::uuid[])`;
  return { total: Number(row?.total ?? 0), pending: Number(row?.pending ?? 0) };
}

/** The task a worker's log says it claimed (the "claimed" line), with its attempt. */
export function claimedBy(role: Role): { taskId: string; attempt: number } {
  const line = role.logs.find((l) => l.msg === WORKER_LOG.claimed);
  const taskId = line?.task_id;
  const attempt = line?.attempt;
  if (typeof taskId !== "string" || typeof attempt !== "number")
    throw new Error(`${role.name} logged no claim: ${role.stderr().slice(-2000)}`);
  return { taskId, attempt };
}
