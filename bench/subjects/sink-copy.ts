import { connect } from "../../src/db/connect";
import { expectStoredRows, inParallel, makeBatches, ORG } from "../lib/alerts";
import { meteredRows } from "../lib/pgcpu";
import { option, subjectMain } from "../lib/protocol";

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
    const { seconds, cpu } = await meteredRows(params.url, params.count, () =>
      inParallel(chunks, concurrency, async (chunk) => {
        const w = await sql`
        COPY data.alert_events
          (dedupe_key, org_id, task_id, source, severity, title, occurred_at, attributes)
        FROM STDIN`.writable();
        await new Promise<void>((resolve, reject) => {
          w.on("error", reject);
          w.on("finish", () => resolve());
          w.end(chunk);
        });
      }),
    );
    await expectStoredRows(sql, params.count);
    return { items: params.count, seconds, extra: cpu };
  } finally {
    await sql.end({ timeout: 1 });
  }
});
