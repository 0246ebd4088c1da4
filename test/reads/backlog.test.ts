import { describe, expect, test } from "bun:test";
import { BACKLOG_CAP } from "../../src/contracts/http";
import { backlogCounts, backlogQuery } from "../../src/reads/backlog";
import { createTasks } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";

/** What `GET /internal/backlog` counts: pending outbox rows, queued and running tasks, each capped. */

const db = useFreshDatabase();

async function reset() {
  await db().sql`DELETE FROM state.outbox`;
  await db().sql`DELETE FROM state.tasks`;
}

describe("backlogCounts", () => {
  test("pending outbox rows, queued tasks (a delayed retry included) and running tasks; nothing else", async () => {
    await reset();
    expect(await backlogCounts(db().sql)).toEqual({
      outbox_pending: 0,
      tasks_queued: 0,
      tasks_running: 0,
    });
    const ids = await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 5 });
    const [running, retrying, done, failed, sent] = ids;
    await db().sql`UPDATE state.tasks SET status = 'running' WHERE id = ${running ?? ""}`;
    await db()
      .sql`UPDATE state.tasks SET retry_at = now() + interval '1 hour' WHERE id = ${retrying ?? ""}`;
    await db().sql`UPDATE state.tasks SET status = 'succeeded' WHERE id = ${done ?? ""}`;
    await db().sql`UPDATE state.tasks SET status = 'failed' WHERE id = ${failed ?? ""}`;
    await db()
      .sql`UPDATE state.outbox SET status = 'sent' WHERE payload->>'task_id' = ${sent ?? ""}`;
    await db()
      .sql`UPDATE state.outbox SET status = 'rejected' WHERE payload->>'task_id' = ${done ?? ""}`;
    expect(await backlogCounts(db().sql)).toEqual({
      outbox_pending: 3,
      tasks_queued: 2,
      tasks_running: 1,
    });
  });

  test(`each count stops at ${BACKLOG_CAP}`, async () => {
    await reset();
    await db().sql`
      INSERT INTO state.tasks (org_id, payload)
      SELECT 'acme', '{"alerts": 1}'::jsonb FROM generate_series(1, ${BACKLOG_CAP + 5})`;
    expect(await backlogCounts(db().sql)).toEqual({
      outbox_pending: 0,
      tasks_queued: BACKLOG_CAP,
      tasks_running: 0,
    });
  });

  test("every count can be served by an index (no sequential scan when one is possible)", async () => {
    const plan = await db().sql.begin(async (tx) => {
      await tx`SET LOCAL enable_seqscan = off`;
      return tx`EXPLAIN ${backlogQuery(tx)}`;
    });
    const text = plan.map((r) => String(r["QUERY PLAN"])).join("\n");
    expect(text).not.toContain("Seq Scan");
    expect(text).toContain("outbox_pending_idx");
  });
});
