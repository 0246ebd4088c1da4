import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { claimBatcher } from "../../src/dispatcher/claims";
import { taskClaimMany } from "../../src/dispatcher/sql/claim";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { expireLease } from "./_inprocess";

/**
 * Claims merged into one statement (src/dispatcher/claims.ts,
 * `taskClaimMany`): each claim's outcome is the one it would get alone, and
 * a task is never claimed twice, however the asks for it are merged.
 */

const db = useFreshDatabase();
const RULES = { leaseMs: 30_000, maxAttempts: 2 };

async function attemptsOf(
  taskId: string,
): Promise<Array<{ attempt: number; outcome: string | null }>> {
  const rows = await db().sql`
    SELECT attempt, outcome FROM state.task_attempts WHERE task_id = ${taskId} ORDER BY attempt`;
  return rows.map((r) => ({ attempt: Number(r.attempt), outcome: r.outcome ?? null }));
}

describe("taskClaimMany", () => {
  test("one statement, one outcome per task in order: claimed, lease_active, exhausted, finished, not_found", async () => {
    const fresh = await newTask(db().sql);
    const held = await newTask(db().sql);
    const spent = await newTask(db().sql);
    const done = await newTask(db().sql);
    const ghost = randomUUID();
    await taskClaimMany(db().sql, { taskIds: [held, spent, done], ...RULES });
    // spent: its second attempt's lease expires too, past MAX_ATTEMPTS 2.
    await expireLease(db().sql, spent);
    await taskClaimMany(db().sql, { taskIds: [spent], ...RULES });
    await expireLease(db().sql, spent);
    await db().sql`UPDATE state.tasks SET status = 'succeeded' WHERE id = ${done}`;
    const got = await taskClaimMany(db().sql, {
      taskIds: [fresh, held, spent, done, ghost],
      ...RULES,
    });
    expect(got.map((o) => o.kind)).toEqual([
      "claimed",
      "lease_active",
      "exhausted",
      "finished",
      "not_found",
    ]);
    expect(got[0]).toMatchObject({ kind: "claimed", attempt: 1, orgId: "acme" });
    expect(got[2]).toEqual({ kind: "exhausted", attempt: 2 });
    expect(await attemptsOf(spent)).toEqual([
      { attempt: 1, outcome: "fenced" },
      { attempt: 2, outcome: "expired" },
    ]);
    expect(await attemptsOf(fresh)).toEqual([{ attempt: 1, outcome: null }]);
  });
});

describe("claimBatcher", () => {
  test("every task asked for 4 times at once (ids in either case) is claimed once; the others see lease_active", async () => {
    const ids = await Promise.all(Array.from({ length: 12 }, () => newTask(db().sql)));
    const claim = claimBatcher(db().sql, RULES);
    // Merged statements then hold the same tasks in either order.
    const upper = ids.map((id) => id.toUpperCase()).reverse();
    const asks = [...ids, ...upper, ...ids, ...upper];
    const outcomes = await Promise.all(asks.map((id) => claim(id)));
    for (const id of ids) {
      const mine = outcomes.filter((_, i) => asks[i]?.toLowerCase() === id);
      expect(mine.map((o) => o.kind).sort()).toEqual([
        "claimed",
        "lease_active",
        "lease_active",
        "lease_active",
      ]);
      expect(await attemptsOf(id)).toEqual([{ attempt: 1, outcome: null }]);
    }
  });

  test("two batchers on one database (two dispatchers) still claim each task once", async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, () => newTask(db().sql)));
    const a = claimBatcher(db().sql, RULES);
    const b = claimBatcher(db().sql, RULES);
    const reversed = [...ids].reverse();
    const outcomes = await Promise.all([...ids.map((id) => a(id)), ...reversed.map((id) => b(id))]);
    expect(outcomes.filter((o) => o.kind === "claimed")).toHaveLength(ids.length);
    const [row] = await db().sql`
      SELECT count(*)::int AS n FROM state.task_attempts WHERE task_id = ANY(${ids}::uuid[])`;
    expect(row?.n).toBe(ids.length);
  });
});
