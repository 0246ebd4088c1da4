import { describe, expect, test } from "bun:test";
import type { AlertLine } from "../../src/contracts/alert";
import { AlertRows } from "../../src/sink/rows";
import { useFreshDatabase } from "../support/db";
import {
  alert,
  clearBeforeEach,
  deadLetterOf,
  goodLines,
  jsonl,
  publishBatchMessage,
  putBatch,
  rowCount,
  sinkUntilIdle,
  useTempStore,
  whileRefused,
} from "./helpers";

/**
 * Batches larger than one statement's chunk (5,000 rows): packed rows, written
 * in key order across the whole batch, in one transaction.
 */

const db = useFreshDatabase();
const store = useTempStore();
clearBeforeEach(() => db().sql);

describe("packed rows (src/sink/rows.ts)", () => {
  test("rows come back as they went in, in UTF-8 byte order of their keys, earlier line first", () => {
    const keys = ["b", "a", "é", "😀", "\uffff", "a", "ab", "A", ""];
    const rows = new AlertRows();
    const lines: AlertLine[] = keys.map((k, i) =>
      line(k, i, i % 2 === 0 ? undefined : { i, nested: { s: `ü${i}` } }),
    );
    for (const l of lines) rows.append(l);
    const order = rows.keyOrder();
    const bytes = (s: string) => Buffer.from(s, "utf8");
    const want = keys
      .map((k, i) => ({ k, i }))
      .sort((x, y) => Buffer.compare(bytes(x.k), bytes(y.k)) || x.i - y.i)
      .map((x) => x.i);
    expect([...order]).toEqual(want);
    // One chunk of everything, then chunks of 2 rows: the same rows either way.
    const [all] = rows.columns(order, Infinity, Infinity);
    expect(all?.dedupeKeys).toEqual(want.map((i) => keys[i] ?? ""));
    expect(all?.attributes).toEqual(want.map((i) => JSON.stringify(lines[i]?.attributes ?? {})));
    expect(all?.severities).toEqual(want.map((i) => lines[i]?.severity ?? ""));
    expect(all?.titles).toEqual(want.map((i) => lines[i]?.title ?? ""));
    const small = [...rows.columns(order, 2, Infinity)];
    expect(small).toHaveLength(5);
    expect(small.flatMap((c) => c.dedupeKeys)).toEqual(all?.dedupeKeys ?? []);
  });

  test("a 2 MiB record gets a slab of its own and round-trips", () => {
    const rows = new AlertRows();
    const big = "x".repeat(2 * 1024 * 1024);
    rows.append(line("big", 0, { big }));
    rows.append(line("small", 1, undefined));
    const [c] = rows.columns(rows.keyOrder(), Infinity, Infinity);
    expect(c?.dedupeKeys).toEqual(["big", "small"]);
    expect(c?.attributes[0]).toBe(JSON.stringify({ big }));
  });
});

function line(key: string, i: number, attributes: AlertLine["attributes"]): AlertLine {
  const severities = ["info", "low", "medium", "high", "critical"] as const;
  return {
    dedupe_key: key,
    org_id: "acme",
    source: `src-${i}`,
    severity: severities[i % severities.length] ?? "info",
    title: `title ${i} ✓`,
    occurred_at: `2024-05-01T12:00:0${i % 10}Z`,
    ...(attributes === undefined ? {} : { attributes }),
  };
}

describe("batches of several chunks", () => {
  test("12,001 lines go in one transaction: a failure in the last chunk leaves no row of the first", async () => {
    const sql = db().sql;
    // A refusal that only the last chunk (key order) meets.
    await whileRefused(sql, { key: "zzz-refused", sqlstate: "22023" }, async () => {
      const lines = [alert("acme", "zzz-refused"), ...goodLines("acme", "k", 12_000)];
      const b = await putBatch(store().store, jsonl(lines));
      const id = await publishBatchMessage(db().queue(), b);
      const m = await sinkUntilIdle(db(), store().store, { visibilityTimeoutMs: 10_000 });
      expect(m).toMatchObject({ batches: 0, deadLetters: 1, retries: 0 });
      expect(await deadLetterOf(sql, id)).toBe("the database refused the batch (SQLSTATE 22023)");
      expect(await rowCount(sql)).toBe(0);
      expect(await sql`SELECT 1 FROM data.sink_batches`).toHaveLength(0);
    });
  }, 60_000);

  test("overlapping 11,000-line batches in opposite orders, written at once: no deadlock, no double", async () => {
    const sql = db().sql;
    const lines = goodLines("acme", "o", 11_000);
    for (let i = 0; i < 4; i++) {
      const order = i % 2 === 0 ? lines : [...lines].reverse();
      await publishBatchMessage(db().queue(), await putBatch(store().store, jsonl(order)));
    }
    const m = await sinkUntilIdle(db(), store().store, {
      concurrency: 4,
      visibilityTimeoutMs: 30_000,
    });
    expect(m).toMatchObject({ batches: 4, rowsInserted: 11_000, rowsSkipped: 33_000, retries: 0 });
    expect(await rowCount(sql)).toBe(11_000);
    const [batch] = await sql`SELECT sum(rows_inserted)::int AS i, sum(rows_skipped)::int AS s
      FROM data.sink_batches`;
    expect(batch).toEqual({ i: 11_000, s: 33_000 });
  }, 90_000);
});

describe("the rows travel as JSON (src/sink/sql.ts)", () => {
  /** Text that an escaping mistake on the way to the database would change. */
  const tricky =
    'quote " backslash \\ \\" tab \t newline \n cr \r bell \u0007 é 😀 \u2028 {"a":[1]} ,;';
  const trickyLine = (key: string) =>
    alert("acme", `${key} ${tricky}`, {
      source: tricky,
      title: tricky,
      attributes: { [tricky]: tricky, list: [tricky, 1.5, null, true], empty: {} },
    });

  test.each([
    ["held as alerts (one statement)", 10],
    ["packed (over 1 MiB, several chunks)", 12_000],
  ])(
    "strings with quotes, backslashes, controls and non-ASCII are stored as sent: %s",
    async (_, fill) => {
      const sql = db().sql;
      const lines = [trickyLine("x"), ...goodLines("acme", "fill", fill)];
      await publishBatchMessage(db().queue(), await putBatch(store().store, jsonl(lines)));
      const m = await sinkUntilIdle(db(), store().store, { visibilityTimeoutMs: 10_000 });
      expect(m).toMatchObject({ batches: 1, rowsInserted: fill + 1, deadLetters: 0, retries: 0 });
      const [row] = await sql`
      SELECT dedupe_key, source, title, attributes FROM data.alert_events
      WHERE dedupe_key LIKE 'x %'`;
      const sent = trickyLine("x");
      expect(row).toEqual({
        dedupe_key: sent.dedupe_key,
        source: sent.source,
        title: sent.title,
        attributes: sent.attributes,
      });
    },
    60_000,
  );
});
