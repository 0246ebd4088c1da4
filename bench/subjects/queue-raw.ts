import { randomUUID } from "node:crypto";
import { connect } from "../../src/db/connect";
import { PgQueue } from "../../src/queue/pg/backend";
import { chunks, option, since, subjectMain } from "../lib/protocol";

/**
 * The raw SQL ceiling: the receive and ack statements of src/queue/pg/sql.ts,
 * issued directly with postgres.js in a tight loop — no payload validation,
 * no row parsing, no sorting. Keep the statements in step with sql.ts.
 */
subjectMain(async (params) => {
  const batch = option(params, "batch");
  const concurrency = option(params, "concurrency");
  const sql = connect(params.url, { name: "bench-raw", max: concurrency });
  try {
    const payloads = Array.from({ length: params.count }, () => ({
      payload: { task_id: randomUUID() },
    }));
    const publisher = PgQueue.open(params.url, { name: "bench-raw-publish", connections: 1 });
    try {
      for (const part of chunks(payloads, 1000))
        await publisher.publisher().publish("task_wakeup", part);
    } finally {
      await publisher.close();
    }

    const queue = "task_wakeup";
    const dlq = "task_wakeup.dlq";
    const maxReceives = 5;
    const visibilityTimeoutMs = 60_000;
    let done = 0;
    const consumer = async () => {
      for (;;) {
        const rows = await sql`
          WITH candidates AS (
            SELECT id, receive_count FROM state.queue_messages
            WHERE queue_name = ${queue} AND queue_name NOT LIKE '%.dlq' AND available_at <= now()
            ORDER BY available_at, id
            LIMIT ${batch}
            FOR UPDATE SKIP LOCKED
          ), exhausted AS (
            UPDATE state.queue_messages m
            SET queue_name = ${dlq},
                last_error = coalesce(m.last_error, 'no error recorded') || ' (dead-lettered after ' || m.receive_count || ' receives)',
                available_at = now()
            FROM candidates c
            WHERE m.id = c.id AND c.receive_count >= ${maxReceives}
            RETURNING m.id
          )
          UPDATE state.queue_messages m
          SET receive_count = m.receive_count + 1,
              available_at = now() + make_interval(secs => ${visibilityTimeoutMs}::double precision / 1000)
          FROM candidates c
          WHERE m.id = c.id AND c.receive_count < ${maxReceives}
          RETURNING m.id::text AS id, m.queue_name, m.payload, m.receive_count, m.last_error, m.created_at`;
        if (rows.length === 0) return;
        const ids = rows.map((r) => String(r.id));
        const deleted = await sql`
          DELETE FROM state.queue_messages WHERE id = ANY(${ids}::bigint[]) RETURNING id`;
        done += deleted.length;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, consumer));
    const seconds = since(start);
    if (done !== params.count) throw new Error(`acked ${done} of ${params.count}`);
    return { items: done, seconds };
  } finally {
    await sql.end({ timeout: 1 });
  }
});
