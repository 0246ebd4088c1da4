import { describe, expect, test } from "bun:test";
import { connect, type Sql } from "../../src/db/connect";
import { taskClaimMany } from "../../src/dispatcher/sql/claim";
import { taskInsertMany } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";

/**
 * The dispatcher plans each statement once per connection (genericPlans).
 * A claim planned while the statistics said "hardly any queued tasks" (a
 * fresh table, then a burst of creates) must still find its tasks by id:
 * a plan that reads every queued task through a status index was cheaper on
 * paper there, and would then serve every claim until the next ANALYZE.
 */

const db = useFreshDatabase();
const RULES = { leaseMs: 30_000, maxAttempts: 5 };
const STATUS_INDEXES = [
  "tasks_status_created_idx",
  "tasks_org_status_created_idx",
  "tasks_running_idx",
];

/** Index scans of the task status indexes so far, this session's own included. */
async function statusIndexScans(sql: Sql): Promise<number> {
  await sql`SELECT pg_stat_force_next_flush()`;
  await sql`SELECT pg_stat_clear_snapshot()`;
  const [r] = await sql`
    SELECT coalesce(sum(idx_scan), 0)::int AS n FROM pg_stat_user_indexes
    WHERE schemaname = 'state' AND indexrelname IN ${sql(STATUS_INDEXES)}`;
  return Number(r?.n ?? 0);
}

describe("the claim's plan", () => {
  test("a generic plan made on a nearly empty table's statistics finds the tasks by id", async () => {
    // One connection: the same session plans, claims and reads its own statistics.
    const sql = connect(db().url, { name: "claim-plan", max: 1, genericPlans: true });
    try {
      await taskInsertMany(sql, { orgId: "plan", payloads: [{ alerts: 1 }] });
      await sql`ANALYZE state.tasks`;
      const payloads = Array.from({ length: 3_000 }, () => ({ alerts: 1 }));
      const ids = await taskInsertMany(sql, { orgId: "plan", payloads });
      const before = await statusIndexScans(sql);
      for (let i = 0; i < 6; i++) {
        const got = await taskClaimMany(sql, { taskIds: ids.slice(i * 5, i * 5 + 5), ...RULES });
        expect(got.map((c) => c.kind)).toEqual(Array(5).fill("claimed"));
      }
      expect(await statusIndexScans(sql)).toBe(before);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});
