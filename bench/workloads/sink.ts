import type { Workload } from "./types";

/**
 * Workload 3: 200,000 alerts in 1,000-line JSONL batches through the real
 * sink path (fetch, parse, validate, upsert, ack) against a bare multi-row
 * insert of pre-built columns and against COPY of the same rows, 4 batches
 * in flight for all (`harness sink`'s default concurrency); then the same
 * batches again when every row is already stored: the same messages (a
 * redelivery), and the same rows as new batches of a second attempt.
 */

const COUNT = 200_000;
const QUICK_COUNT = 20_000;
const CONCURRENCY = 4;
const fresh = { concurrency: CONCURRENCY, duplicates: 0 };
const dups = { concurrency: CONCURRENCY, duplicates: 1 };
const retried = { concurrency: CONCURRENCY, duplicates: 2 };

export const sinkIngest: Workload = {
  id: "sink-ingest",
  group: "sink",
  title: `sink ingest, 1,000-line batches, ${CONCURRENCY} in flight`,
  unit: "rows/s",
  items: "rows",
  count: COUNT,
  quickCount: QUICK_COUNT,
  details: [
    { key: "validate_only_rows_per_s", label: "validation alone", unit: "rows/s" },
    { key: "sink_js_ms_per_1000_rows", label: "sink JS CPU", unit: "ms/1,000 rows", digits: 1 },
    { key: "postgres_ms_per_1000_rows", label: "PostgreSQL CPU", unit: "ms/1,000 rows", digits: 1 },
  ],
  ours: {
    id: "ours",
    label: "harness sink loop (fetch, validate, upsert, ack)",
    script: "subjects/sink-ours.ts",
    database: "state",
    options: fresh,
  },
  references: [
    {
      id: "bare",
      label: "bare INSERT … unnest ON CONFLICT DO NOTHING, no parsing",
      script: "subjects/sink-bare.ts",
      database: "state",
      options: fresh,
      // Issue 15: "sink, fresh rows ≥ 0.85× the bare insert (keep it)".
      target: 0.85,
    },
    {
      id: "copy",
      label: "COPY FROM STDIN, rows pre-formatted",
      script: "subjects/sink-copy.ts",
      database: "state",
      options: fresh,
      target: 0.5,
    },
  ],
};

export const sinkDuplicates: Workload = {
  id: "sink-duplicates",
  group: "sink",
  title: `sink redelivery, every batch already committed, ${CONCURRENCY} in flight`,
  unit: "rows/s",
  items: "rows",
  count: COUNT,
  quickCount: QUICK_COUNT,
  details: [
    { key: "sink_js_ms_per_1000_rows", label: "sink JS CPU", unit: "ms/1,000 rows", digits: 1 },
    { key: "postgres_ms_per_1000_rows", label: "PostgreSQL CPU", unit: "ms/1,000 rows", digits: 1 },
  ],
  ours: { ...sinkIngest.ours, options: dups },
  references: [
    {
      id: "bare",
      label: "bare INSERT … unnest ON CONFLICT DO NOTHING, no parsing",
      script: "subjects/sink-bare.ts",
      database: "state",
      options: dups,
      target: 0.8,
    },
  ],
};

export const sinkRetried: Workload = {
  ...sinkDuplicates,
  id: "sink-retried",
  title: `sink re-run as a second attempt's batches, every row already stored, ${CONCURRENCY} in flight`,
  ours: { ...sinkIngest.ours, options: retried },
  references: sinkDuplicates.references.map((r) => ({ ...r, options: retried })),
};
