import type { TaskPayload } from "../contracts/task";
import type { Sql } from "../db/connect";
import { type OutboxRow, outboxInsert } from "./sql/outbox";
import { taskInsertMany } from "./sql/tasks";

/**
 * Creates tasks and their `task_wakeup` outbox rows in one transaction, so a
 * task never exists without the wakeup that gets it worked on.
 */
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
