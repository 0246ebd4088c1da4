import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Sql } from "../../src/db/connect";
import { SINK_LOG } from "../../src/sink/logs";
import { Slots } from "../../src/sink/slots";
import { alertEventsInsertBatch, type BatchInsertParams } from "../../src/sink/sql";
import { checkBatch } from "../../src/sink/validate";
import { BatchWriter } from "../../src/sink/writer";
import { useFreshDatabase } from "../support/db";
import {
  alert,
  clearBeforeEach,
  deadLetterOf,
  goodLines,
  jsonl,
  publishBatchMessage,
  putBatch,
  quiet,
  sinkUntilIdle,
  useTempStore,
  whileRefused,
} from "./helpers";

/**
 * The sink's writer on a real database: small batches ready together share
 * one statement and one transaction, and each comes out exactly as if it had
 * been written alone, one after the other.
 */

const db = useFreshDatabase();
const store = useTempStore();
clearBeforeEach(() => db().sql);

interface Made {
  p: BatchInsertParams;
  bytes: number;
}

/** A validated batch of `lines` for `org` (and `task`), as the sink holds it before writing. */
function batch(org: string, lines: readonly unknown[], task = randomUUID()): Made {
  const bytes = new TextEncoder().encode(jsonl(lines));
  const checked = checkBatch(bytes, org);
  if (!checked.ok) throw new Error(`test batch refused: ${checked.failure.reason}`);
  const p = {
    taskId: task,
    orgId: org,
    attempt: 1,
    batchUri: `file:///objects/${org}/${task}/1-${randomUUID()}.jsonl`,
    rows: checked.rows,
  };
  return { p, bytes: bytes.byteLength };
}

/** Every write at once, in the same turn of the event loop; their settled results, in order. */
function writeAll(writer: BatchWriter, batches: Made[]) {
  return Promise.allSettled(batches.map((b) => writer.write(b.p, b.bytes)));
}

async function stored(sql: Sql) {
  const rows = await sql`
    SELECT org_id, dedupe_key, task_id::text AS task_id, title FROM data.alert_events
    ORDER BY org_id, dedupe_key`;
  const batches = await sql`
    SELECT batch_uri, rows_inserted, rows_skipped, xmin::text AS tx FROM data.sink_batches ORDER BY id`;
  return { rows: [...rows], batches: [...batches] };
}

describe("sink writer: small batches grouped", () => {
  /** Repeats across orgs, within an org across batches, and one batch delivered twice. */
  function mixed(): Made[] {
    const a = batch("acme", [alert("acme", "k1"), alert("acme", "k2"), alert("acme", "dup")]);
    const b = batch("globex", [alert("globex", "k1"), alert("globex", "k2")]);
    const c = batch("acme", [alert("acme", "dup", { title: "later" }), alert("acme", "c1")]);
    return [a, b, c, a];
  }

  test("batches ready together: one transaction, and each counted and stored as if written alone, in turn", async () => {
    const sql = db().sql;
    const batches = mixed();
    const grouped = await writeAll(new BatchWriter(sql, new Slots(1)), batches);
    const counts = grouped.map((r) => (r.status === "fulfilled" ? r.value : r.reason));
    expect(counts).toEqual([
      { rowsInserted: 3, rowsSkipped: 0 },
      { rowsInserted: 2, rowsSkipped: 0 },
      { rowsInserted: 1, rowsSkipped: 1 },
      { rowsInserted: 0, rowsSkipped: 3 },
    ]);
    const together = await stored(sql);
    expect(new Set(together.batches.map((b) => b.tx)).size).toBe(1);
    const dup = together.rows.find((r) => r.dedupe_key === "dup");
    expect(dup).toMatchObject({ task_id: batches[0]?.p.taskId, title: "alert dup" });

    // The same batches one by one, each alone.
    await sql`DELETE FROM data.alert_events`;
    await sql`DELETE FROM data.sink_batches`;
    const alone = [];
    for (const b of batches) alone.push(await alertEventsInsertBatch(sql, b.p));
    expect(alone).toEqual(counts);
    const oneByOne = await stored(sql);
    expect(oneByOne.rows).toEqual(together.rows);
    const withoutTx = (s: typeof oneByOne) => s.batches.map(({ tx: _, ...rest }) => rest);
    expect(withoutTx(oneByOne)).toEqual(withoutTx(together));
    expect(new Set(oneByOne.batches.map((b) => b.tx)).size).toBe(4);
  });

  test("batches that arrive while every place is taken wait, then go together", async () => {
    const sql = db().sql;
    const writer = new BatchWriter(sql, new Slots(1));
    const first = writer.write(batch("acme", goodLines("acme", "first", 5)).p, 1);
    // Once the first group's statement is under way, three more arrive one by one.
    await new Promise((r) => setImmediate(r));
    const later = [0, 1, 2].map((i) => {
      const b = batch("acme", goodLines("acme", `later-${i}`, 5));
      return writer.write(b.p, b.bytes);
    });
    expect(await first).toEqual({ rowsInserted: 5, rowsSkipped: 0 });
    for (const c of await Promise.all(later))
      expect(c).toEqual({ rowsInserted: 5, rowsSkipped: 0 });
    const txs =
      await sql`SELECT xmin::text AS tx, count(*)::int AS n FROM data.sink_batches GROUP BY 1 ORDER BY 2`;
    expect(txs.map((t) => t.n)).toEqual([1, 3]);
  });

  test("a batch the database refuses fails alone: the others of its group are written", async () => {
    const sql = db().sql;
    await whileRefused(sql, { key: "refused", sqlstate: "23514" }, async () => {
      const batches = [
        batch("acme", goodLines("acme", "good-a", 3)),
        batch("acme", [alert("acme", "fine"), alert("acme", "refused")]),
        batch("globex", goodLines("globex", "good-b", 2)),
      ];
      const warned: [string, Record<string, unknown> | undefined][] = [];
      const log = {
        ...quiet,
        warn: (msg: string, f?: Record<string, unknown>) => warned.push([msg, f]),
      };
      const results = await writeAll(new BatchWriter(sql, new Slots(1), log), batches);
      // The group's statement failed once, and said so; then each batch went alone.
      expect(warned).toHaveLength(1);
      expect(warned[0]?.[0]).toBe(SINK_LOG.groupFailed);
      expect(warned[0]?.[1]).toEqual({ batches: 3, rows: 7, code: "23514" });
      expect(results[0]).toEqual({
        status: "fulfilled",
        value: { rowsInserted: 3, rowsSkipped: 0 },
      });
      expect(results[1]?.status).toBe("rejected");
      const err: unknown = results[1]?.status === "rejected" ? results[1].reason : undefined;
      expect(err).toMatchObject({ code: "23514" });
      expect(results[2]).toEqual({
        status: "fulfilled",
        value: { rowsInserted: 2, rowsSkipped: 0 },
      });
      const s = await stored(sql);
      expect(s.rows.map((r) => r.dedupe_key).sort()).toEqual(
        ["good-a-0", "good-a-1", "good-a-2", "good-b-0", "good-b-1"].sort(),
      );
      expect(s.batches.map((b) => b.batch_uri)).toEqual([
        batches[0]?.p.batchUri,
        batches[2]?.p.batchUri,
      ]);
    });
  });

  test("a batch of 256 rows or more is written alone", async () => {
    const sql = db().sql;
    const batches = [
      batch("acme", goodLines("acme", "x", 256)),
      batch("acme", goodLines("acme", "y", 256)),
    ];
    const results = await writeAll(new BatchWriter(sql, new Slots(2)), batches);
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
    const [n] = await sql`SELECT count(DISTINCT xmin::text)::int AS n FROM data.sink_batches`;
    expect(n?.n).toBe(2);
  });

  test("two writers grouping overlapping batches in opposite orders neither deadlock nor double", async () => {
    const sql = db().sql;
    const orgs = ["acme", "globex"];
    const made = Array.from({ length: 40 }, (_, i) => {
      const org = orgs[i % 2] ?? "acme";
      // Every batch of an org shares most keys with the others, in its own order.
      const lines = goodLines(org, "shared", 60);
      return batch(org, i % 4 < 2 ? lines : [...lines].reverse());
    });
    for (let round = 0; round < 5; round++) {
      await sql`DELETE FROM data.alert_events`;
      const one = new BatchWriter(sql, new Slots(3));
      const other = new BatchWriter(sql, new Slots(3));
      const results = await Promise.allSettled([
        ...made.map((b) => one.write(b.p, b.bytes)),
        ...[...made].reverse().map((b) => other.write(b.p, b.bytes)),
      ]);
      const failed = results.filter((r) => r.status === "rejected");
      expect(failed).toEqual([]);
      const inserted = results.reduce(
        (n, r) => n + (r.status === "fulfilled" ? r.value.rowsInserted : 0),
        0,
      );
      expect(inserted).toBe(120);
      const [rows] = await sql`SELECT count(*)::int AS n FROM data.alert_events`;
      expect(rows?.n).toBe(120);
    }
  }, 30_000);

  test("through the sink loop: of a group, only the batch the database refuses is dead-lettered", async () => {
    const sql = db().sql;
    await whileRefused(sql, { key: "refused", sqlstate: "22023" }, async () => {
      const good = [];
      for (let i = 0; i < 6; i++) {
        const b = await putBatch(store().store, jsonl(goodLines("acme", `g${i}`, 10)));
        await publishBatchMessage(db().queue(), b);
        good.push(b);
      }
      const bad = await putBatch(
        store().store,
        jsonl([alert("acme", "x"), alert("acme", "refused")]),
      );
      const badId = await publishBatchMessage(db().queue(), bad);
      const m = await sinkUntilIdle(db(), store().store, {
        concurrency: 1,
        visibilityTimeoutMs: 10_000,
      });
      expect(m).toMatchObject({ batches: 6, rowsInserted: 60, deadLetters: 1, retries: 0 });
      expect(await deadLetterOf(sql, badId)).toBe(
        "the database refused the batch (SQLSTATE 22023)",
      );
      const tasks = await sql`SELECT DISTINCT task_id::text AS t FROM data.alert_events`;
      expect(tasks.map((r) => r.t).sort()).toEqual(good.map((b) => b.taskId).sort());
      // The good batches shared statements: fewer transactions than batches.
      const [txs] = await sql`SELECT count(DISTINCT xmin::text)::int AS n FROM data.sink_batches`;
      expect(txs?.n).toBeLessThan(6);
    });
  });
});
