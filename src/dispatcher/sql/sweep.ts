import type postgres from "postgres";
import * as v from "valibot";
import type { Db, Sql } from "../../db/connect";
import { outboxInsert, wakeupRows } from "../../outbox/sql";

/**
 * The sweep of `queued` tasks (invariant 8, against invariant 9's worker): a
 * queued task is claimed only when a worker that received its wakeup claims
 * it, and a worker may ack a wakeup without claiming (a compromised one, with
 * its own queue's rights) or the queue may dead-letter it (after
 * MAX_RECEIVES refused claims, a dispatcher outage). Nothing would wake that
 * task again: the lease reaper wakes only `running` ones. So a queued task
 * left unclaimed for the sweep period since its last wakeup — created, its
 * retry due (`retry_at`: a backoff is never cut short), or swept — gets one
 * fresh `task_wakeup` through the outbox, at most one per period
 * (`swept_at`), decided by the database clock.
 *
 * A task unclaimed that long may also simply be waiting behind a backlog,
 * its wakeup still unreceived; sweeping it would only add a duplicate. Given
 * how many wakeups wait to be received (`waiting`: pending in the outbox,
 * ready or delayed in the queue; ../reaper.ts counts them), the sweep takes
 * at most as many tasks as there are queued tasks beyond them: with one
 * wakeup waiting per queued task, none. The ones it takes are the oldest: a
 * queue hands out its oldest messages first, so the tasks whose wakeup is
 * gone are older than those whose wakeup still waits. Messages in flight do
 * not count as waiting: a worker may hold one forever (queue_extend) without
 * ever claiming. With `waiting` null (the queue cannot be counted) the
 * period alone decides.
 */

/** Queued tasks whose last wakeup is at least `periodMs` old: the sweep's candidates. */
function dueSql(db: Db, periodMs: number): postgres.PendingQuery<postgres.Row[]> {
  const before = db`now() - make_interval(secs => ${periodMs}::float8 / 1000)`;
  // created_at bounds the range of tasks_status_created_idx; greatest() (which skips
  // nulls) is the rule: no wakeup of its own for a period since the last one.
  return db`status = 'queued' AND created_at <= ${before}
    AND greatest(created_at, retry_at, swept_at) <= ${before}`;
}

/**
 * Whether any queued task is due: a cheap look before the queue is asked for
 * its count. In index order, so the plan walks tasks_status_created_idx
 * however many tasks are queued (a sequential scan otherwise looked likely).
 */
export async function taskSweepDue(db: Db, p: { periodMs: number }): Promise<boolean> {
  const rows = await db`
    SELECT 1 FROM state.tasks WHERE ${dueSql(db, p.periodMs)} ORDER BY created_at, id LIMIT 1`;
  return rows.length > 0;
}

const Swept = v.array(v.object({ id: v.string(), attempt: v.number() }));

/**
 * The sweep's round, in one transaction: up to `limit` due tasks, oldest
 * first (no more than the guard allows when `waiting` is known), are marked
 * `swept_at = now()` (SKIP LOCKED: two dispatchers split them, and a claim
 * in progress is passed over) and get one `task_wakeup` outbox row each.
 * Returns how many were woken.
 */
export async function taskSweep(
  sql: Sql,
  p: { limit: number; periodMs: number; waiting: number | null },
): Promise<number> {
  return sql.begin(async (tx) => {
    const marked = await tx`
      WITH room AS (
        SELECT CASE WHEN ${p.waiting}::int IS NULL THEN ${p.limit}::int
          ELSE least(${p.limit}::int, greatest(0,
            (SELECT count(*) FROM state.tasks WHERE status = 'queued') - ${p.waiting}::int))::int
        END AS n
      ), due AS (
        SELECT id FROM state.tasks
        WHERE ${dueSql(tx, p.periodMs)}
        ORDER BY created_at, id
        LIMIT (SELECT n FROM room)
        FOR UPDATE SKIP LOCKED
      )
      -- By primary key: joined to the CTE, whose LIMIT the planner cannot see, it
      -- chose to hash the whole table.
      UPDATE state.tasks t SET swept_at = now()
      WHERE t.id = ANY(ARRAY(SELECT id FROM due))
      RETURNING t.id::text AS id, t.attempt`;
    const rows = wakeupRows(v.parse(Swept, [...marked]));
    await outboxInsert(tx, { rows, notify: true });
    return rows.length;
  });
}
