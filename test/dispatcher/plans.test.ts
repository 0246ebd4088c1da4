import { describe, expect, test } from "bun:test";
import type { BufferMessage } from "../../src/contracts/queue";
import { connect, type Sql } from "../../src/db/connect";
import { taskClaimMany } from "../../src/dispatcher/sql/claim";
import { taskCompleteMany } from "../../src/dispatcher/sql/complete";
import type { Fence } from "../../src/dispatcher/sql/fence";
import { taskFenceRead } from "../../src/dispatcher/sql/fence";
import { leaseRenewMany, taskFail, taskPublishBatchMany } from "../../src/dispatcher/sql/tasks";
import { taskInsertMany } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";

/**
 * The dispatcher plans each statement once per connection (genericPlans),
 * often while the statistics still say "hardly any tasks" (a fresh table,
 * then a burst of creates). Each fenced statement must still read only the
 * rows of its own tasks, whatever the table holds later: a plan that scans
 * the table (or a status index) was cheaper on paper on the small table, and
 * would then cost every call time in proportion to the whole table.
 */

const db = useFreshDatabase();
const ORG = "plan";
const RULES = { leaseMs: 30_000, maxAttempts: 5 };
const TABLES = ["tasks", "task_attempts"];
/** Rows and index entries a statement may read per task it touches: a few, never the table. */
const READS_PER_TASK = 12;

/** Sequential scans of the tables, and the rows and index entries any scan read; this session's own included. */
async function reads(sql: Sql): Promise<{ seqScans: number; tuples: number }> {
  await sql`SELECT pg_stat_force_next_flush()`;
  await sql`SELECT pg_stat_clear_snapshot()`;
  const [r] = await sql`
    SELECT (SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables
            WHERE schemaname = 'state' AND relname IN ${sql(TABLES)})::int AS seq_scans,
           (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables
            WHERE schemaname = 'state' AND relname IN ${sql(TABLES)})::int
           + (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes
              WHERE schemaname = 'state' AND relname IN ${sql(TABLES)})::int AS tuples`;
  return { seqScans: Number(r?.seq_scans ?? 0), tuples: Number(r?.tuples ?? 0) };
}

/** What `run` read, for `tasks` tasks: no sequential scan, a bounded number of tuples. */
async function expectKeyedReads(
  sql: Sql,
  what: string,
  tasks: number,
  run: () => Promise<unknown>,
) {
  const before = await reads(sql);
  await run();
  const after = await reads(sql);
  const got = { seqScans: after.seqScans - before.seqScans, tuples: after.tuples - before.tuples };
  const tuples = got.tuples <= READS_PER_TASK * tasks ? "within bound" : got.tuples;
  expect({ what, seqScans: got.seqScans, tuples }).toEqual({
    what,
    seqScans: 0,
    tuples: "within bound",
  });
}

function batchOf(f: Fence, n: number): BufferMessage {
  return {
    task_id: f.taskId,
    org_id: f.orgId,
    attempt: f.attempt,
    batch_uri: `file:///store/${f.orgId}/${f.taskId}/${f.attempt}-${n}.jsonl`,
    content_type: "application/x-ndjson",
    batch_size_bytes: 10,
  };
}

async function claimFences(sql: Sql, ids: readonly string[]): Promise<Fence[]> {
  const got = await taskClaimMany(sql, { taskIds: ids, ...RULES });
  return got.map((c, i) => {
    if (c.kind !== "claimed") throw new Error(`task ${ids[i]} was not claimed: ${c.kind}`);
    return { taskId: ids[i] ?? "", attempt: c.attempt, leaseToken: c.leaseToken, orgId: c.orgId };
  });
}

describe("the dispatcher's plans, made once on a nearly empty table", () => {
  test("every fenced statement reads only its own tasks' rows", async () => {
    // One connection plans, runs and reads its own statistics; another sets the scene.
    const sql = connect(db().url, { name: "plans", max: 1, genericPlans: true });
    const other = connect(db().url, { name: "plans-scene", max: 1 });
    try {
      // The statistics: 40 tasks, all queued (a fresh start: "no task is running").
      await taskInsertMany(other, { orgId: ORG, payloads: Array(40).fill({}) });
      await other`ANALYZE state.tasks`;
      await other`ANALYZE state.task_attempts`;
      // The table now: 3,000 more tasks, 300 of them running.
      const payloads = Array.from({ length: 3_000 }, () => ({ alerts: 1 }));
      const more = await taskInsertMany(other, { orgId: ORG, payloads });
      for (let i = 0; i < 300; i += 50) await claimFences(other, more.slice(i, i + 50));
      const ids = more.slice(300);
      const group = (i: number) => ids.slice(i * 5, i * 5 + 5);
      // Plan every statement first, on this connection, with the tables still small in the plans.
      for (let i = 0; i < 2; i++) {
        const fences = await claimFences(sql, group(i));
        await leaseRenewMany(sql, { fences, leaseMs: RULES.leaseMs });
        await taskPublishBatchMany(sql, {
          calls: fences.map((f) => ({ ...f, message: batchOf(f, 0) })),
          maxBatches: 4,
        });
        await taskCompleteMany(sql, {
          calls: fences.map((f) => ({ ...f, message: batchOf(f, 1) })),
          maxBatches: 4,
        });
      }
      let fences: Fence[] = [];
      await expectKeyedReads(sql, "claim", 5, async () => {
        fences = await claimFences(sql, group(2));
      });
      await expectKeyedReads(sql, "heartbeat", 5, () =>
        leaseRenewMany(sql, { fences, leaseMs: RULES.leaseMs }),
      );
      await expectKeyedReads(sql, "buffer-publish", 5, () =>
        taskPublishBatchMany(sql, {
          calls: fences.map((f) => ({ ...f, message: batchOf(f, 0) })),
          maxBatches: 4,
        }),
      );
      await expectKeyedReads(sql, "fence read", 1, () =>
        taskFenceRead(sql, fences[0] ?? failNoFence()),
      );
      const [failing, ...completing] = fences;
      if (failing === undefined) throw new Error("no fence to fail");
      await expectKeyedReads(sql, "fail", 1, () =>
        taskFail(sql, { ...failing, reason: "plan test", retryAfterMs: 1_000 }),
      );
      await expectKeyedReads(sql, "complete", 4, async () => {
        const done = await taskCompleteMany(sql, {
          calls: completing.map((f) => ({ ...f, message: batchOf(f, 1) })),
          maxBatches: 4,
        });
        expect(done).toEqual([true, true, true, true]);
      });
    } finally {
      await Promise.all([sql.end({ timeout: 5 }), other.end({ timeout: 5 })]);
    }
  });
});

function failNoFence(): never {
  throw new Error("no fence to read");
}
