import { connect, type Sql } from "../../src/db/connect";
import type { AlertColumns } from "../../src/sink/rows";
import { type Batch, columnsOf, expectStoredRows, inParallel, makeBatches } from "../lib/alerts";
import { meteredRows } from "../lib/pgcpu";
import { option, subjectMain } from "../lib/protocol";

/**
 * Workload 3, reference: a bare multi-row insert of the same rows, columns
 * built beforehand (no queue, no fetch, no parsing or validation, no key
 * ordering, no sink_batches row), `concurrency` statements in flight.
 * With `duplicates` 1 or 2 every row is inserted once untimed, then again timed.
 */

async function insert(sql: Sql, b: Batch, k: AlertColumns) {
  await sql`
    INSERT INTO data.alert_events
      (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
    SELECT u.k, 'bench', ${b.task}::uuid, u.s, u.sev::data.severity, u.t,
           u.o::timestamptz, u.a::jsonb
    FROM unnest(${k.dedupeKeys}::text[], ${k.sources}::text[], ${k.severities}::text[],
                ${k.titles}::text[], ${k.occurredAts}::text[], ${k.attributes}::text[])
      AS u(k, s, sev, t, o, a)
    ON CONFLICT (org_id, dedupe_key) DO NOTHING`;
}

subjectMain(async (params) => {
  const concurrency = option(params, "concurrency");
  const sql = connect(params.url, { name: "bench-sink-bare", max: concurrency });
  try {
    const work = makeBatches(params.count).map((b) => ({ b, k: columnsOf(b) }));
    const all = () => inParallel(work, concurrency, (w) => insert(sql, w.b, w.k));
    if (option(params, "duplicates") > 0) await all();
    const { seconds, cpu } = await meteredRows(params.url, params.count, all);
    await expectStoredRows(sql, params.count);
    return { items: params.count, seconds, extra: cpu };
  } finally {
    await sql.end({ timeout: 1 });
  }
});
