import { connect } from "../../src/db/connect";
import { expectStoredRows, inParallel, makeBatches, ORG } from "../lib/alerts";
import { meterPostgres } from "../lib/pgcpu";
import { option, since, subjectMain } from "../lib/protocol";

/**
 * Workload 3, reference: PostgreSQL COPY … FROM STDIN of the same rows,
 * pre-formatted as text beforehand, one COPY per 1,000-row batch with
 * `concurrency` in flight. No conflict handling: COPY cannot skip duplicates.
 */

const copyText = (s: string) =>
  s.replaceAll("\\", "\\\\").replaceAll("\t", "\\t").replaceAll("\n", "\\n");

subjectMain(async (params) => {
  const concurrency = option(params, "concurrency");
  const sql = connect(params.url, { name: "bench-sink-copy", max: concurrency });
  try {
    const chunks = makeBatches(params.count).map((b) =>
      b.body
        .trimEnd()
        .split("\n")
        .map((l) => {
          const a = JSON.parse(l);
          const cols = [a.dedupe_key, ORG, b.task, a.source, a.severity, a.title, a.occurred_at];
          return `${[...cols, JSON.stringify(a.attributes)].map(copyText).join("\t")}\n`;
        })
        .join(""),
    );
    const pg = await meterPostgres(params.url);
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    await inParallel(chunks, concurrency, async (chunk) => {
      const w = await sql`
        COPY data.alert_events
          (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
        FROM STDIN`.writable();
      await new Promise<void>((resolve, reject) => {
        w.on("error", reject);
        w.on("finish", () => resolve());
        w.end(chunk);
      });
    });
    const seconds = since(start);
    const cpu = process.cpuUsage(cpu0);
    const pgMs = await pg.stop();
    await expectStoredRows(sql, params.count);
    return {
      items: params.count,
      seconds,
      extra: {
        sink_js_ms_per_1000_rows: (cpu.user + cpu.system) / params.count,
        postgres_ms_per_1000_rows: (pgMs * 1000) / params.count,
      },
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
});
