import * as v from "valibot";
import type { Sql } from "../../db/connect";
import { outboxInsert, wakeupRows } from "../../outbox/sql";

const Reaped = v.array(v.object({ id: v.string(), attempt: v.number() }));

/**
 * The reaper's round, in one transaction: `running` tasks whose lease expired
 * and that were not yet woken for this expiry are marked (SKIP LOCKED: two
 * reapers split them) and get one `task_wakeup` outbox row each, through the
 * outbox module like every other row. Returns how many were woken.
 */
export async function leaseReapExpired(sql: Sql, p: { limit: number }): Promise<number> {
  return sql.begin(async (tx) => {
    const marked = await tx`
      WITH due AS (
        SELECT id FROM state.tasks
        WHERE status = 'running' AND lease_expires_at <= now()
          AND reaped_expiry IS DISTINCT FROM lease_expires_at
        ORDER BY lease_expires_at
        LIMIT ${p.limit}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE state.tasks t SET reaped_expiry = t.lease_expires_at
      FROM due WHERE t.id = due.id
      RETURNING t.id::text AS id, t.attempt`;
    const rows = wakeupRows(v.parse(Reaped, [...marked]));
    await outboxInsert(tx, { rows, notify: true });
    return rows.length;
  });
}
