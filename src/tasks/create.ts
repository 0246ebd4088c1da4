import type { TaskPayload } from "../contracts/task";
import type { Db, Sql } from "../db/connect";
import { type OutboxRow, outboxInsert } from "../outbox/sql";

/**
 * Task creation (`task create`, `up --demo`, `verify`): tasks and their
 * `task_wakeup` outbox rows in one transaction, so a task never exists
 * without the wakeup that gets it worked on.
 */

/** Inserts tasks in `queued`; returns their ids in the order given. */
export async function taskInsertMany(
  db: Db,
  p: { orgId: string; payloads: readonly unknown[] },
): Promise<string[]> {
  const json = p.payloads.map((payload) => JSON.stringify(payload));
  const rows = await db`
    INSERT INTO state.tasks (org_id, payload)
    SELECT ${p.orgId}, payload FROM unnest(${json}::text[]::jsonb[]) WITH ORDINALITY AS u(payload, n)
    ORDER BY n
    RETURNING id::text AS id`;
  return rows.map((r) => String(r.id));
}

export async function createTasks(
  sql: Sql,
  p: { orgId: string; payload: TaskPayload; count: number },
): Promise<string[]> {
  const payloads = Array.from({ length: p.count }, () => p.payload);
  try {
    return await sql.begin(async (tx) => {
      const ids = await taskInsertMany(tx, { orgId: p.orgId, payloads });
      const wakeups = ids.map(
        (id): OutboxRow<"task_wakeup"> => ({
          queue: "task_wakeup",
          payload: { task_id: id },
          taskId: id,
          attempt: null,
        }),
      );
      await outboxInsert(tx, { rows: wakeups, notify: true });
      return ids;
    });
  } catch (cause) {
    throw new Error(`creating ${p.count} task(s) for org ${p.orgId}`, { cause });
  }
}
