import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { alertTotals } from "../../src/reads/status";
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
} from "./helpers";

const db = useFreshDatabase();
const store = useTempStore();
clearBeforeEach(() => db().sql);

describe("sink ingest (loop in-process, real database)", () => {
  test("a valid 1,000-line batch inserts 1,000 rows with the task's org; again adds none", async () => {
    const sql = db().sql;
    const b = await putBatch(store().store, jsonl(goodLines("acme", "k", 1000)));
    const first = await publishBatchMessage(db().queue(), b);
    const m1 = await sinkUntilIdle(db(), store().store);
    expect(m1).toMatchObject({ batches: 1, rowsInserted: 1000, rowsSkipped: 0, deadLetters: 0 });
    const [row] = await sql`
      SELECT count(*)::int AS n, count(DISTINCT org_id)::int AS orgs, min(org_id) AS org,
             count(*) FILTER (WHERE task_id = ${b.taskId})::int AS of_task,
             count(*) FILTER (WHERE jsonb_typeof(attributes) = 'object')::int AS objects,
             count(*) FILTER (WHERE attributes -> 'nested' ->> 'ok' = 'true')::int AS nested,
             min(occurred_at) = '2024-05-01T12:00:00.123Z'::timestamptz AS time_ok
      FROM data.alert_events`;
    expect(row).toEqual({
      n: 1000,
      orgs: 1,
      org: "acme",
      of_task: 1000,
      objects: 1000,
      nested: 1000,
      time_ok: true,
    });
    expect(await sql`SELECT 1 FROM state.queue_messages WHERE id = ${first}::bigint`).toHaveLength(
      0,
    );

    // The same message delivered again, and a second batch with the same keys: nothing new.
    await publishBatchMessage(db().queue(), b);
    const again = await putBatch(store().store, jsonl(goodLines("acme", "k", 1000)), {
      taskId: b.taskId,
      attempt: 2,
    });
    await publishBatchMessage(db().queue(), again);
    const m2 = await sinkUntilIdle(db(), store().store);
    expect(m2).toMatchObject({ batches: 2, rowsInserted: 0, rowsSkipped: 2000, deadLetters: 0 });
    expect(await rowCount(sql)).toBe(1000);
    const batches = await sql`
      SELECT rows_inserted, rows_skipped, org_id FROM data.sink_batches ORDER BY id`;
    expect(batches.map((r) => [r.rows_inserted, r.rows_skipped, r.org_id])).toEqual([
      [1000, 0, "acme"],
      [0, 1000, "acme"],
      [0, 1000, "acme"],
    ]);
    expect(await alertTotals(sql)).toEqual({
      rows: 1000,
      batches: 3,
      inserted: 1000,
      skipped: 2000,
    });
  }, 30_000);

  test("duplicate dedupe keys inside one batch are skipped without error", async () => {
    const sql = db().sql;
    const lines = [
      alert("acme", "dup"),
      alert("acme", "other"),
      alert("acme", "dup", { title: "second" }),
    ];
    const b = await putBatch(store().store, jsonl(lines));
    await publishBatchMessage(db().queue(), b);
    const m = await sinkUntilIdle(db(), store().store);
    expect(m).toMatchObject({ batches: 1, rowsInserted: 2, rowsSkipped: 1, deadLetters: 0 });
    const [row] = await sql`SELECT title FROM data.alert_events WHERE dedupe_key = 'dup'`;
    expect(row?.title).toBe("alert dup");
  });

  test("overlapping batches written concurrently in different orders neither deadlock nor double", async () => {
    const sql = db().sql;
    const lines = goodLines("acme", "o", 1000);
    for (let i = 0; i < 8; i++) {
      const order = i % 2 === 0 ? lines : [...lines].reverse();
      await publishBatchMessage(db().queue(), await putBatch(store().store, jsonl(order)));
    }
    const m = await sinkUntilIdle(db(), store().store, {
      concurrency: 4,
      visibilityTimeoutMs: 10_000,
    });
    expect(m).toMatchObject({ batches: 8, rowsInserted: 1000, rowsSkipped: 7000, retries: 0 });
    expect(await rowCount(sql)).toBe(1000);
  }, 30_000);

  test("a line without attributes stores {} and CRLF line ends are accepted", async () => {
    const sql = db().sql;
    const { attributes: _, ...bare } = alert("acme", "bare");
    const b = await putBatch(store().store, `${JSON.stringify(bare)}\r\n`);
    await publishBatchMessage(db().queue(), b);
    await sinkUntilIdle(db(), store().store);
    const [row] =
      await sql`SELECT attributes, jsonb_typeof(attributes) AS t FROM data.alert_events`;
    expect(row).toEqual({ attributes: {}, t: "object" });
  });
});

interface PoisonCase {
  name: string;
  /** Body of the batch in the store (a good line first, then the bad one). */
  body?: string | Uint8Array;
  org?: string;
  override?: (b: { uri: string; size: number; taskId: string }) => {
    batch_uri?: string;
    batch_size_bytes?: number;
  };
  reason: RegExp;
}

const good = JSON.stringify(alert("acme", "good-first"));
const bad = (extra: Record<string, unknown>) => JSON.stringify(alert("acme", "bad", extra));
const { dedupe_key: _omit, ...noKey } = alert("acme", "x");
const utf8Bad = new Uint8Array([
  ...new TextEncoder().encode(`${good}\n{"dedupe_key":"`),
  0xc3,
  0x28,
  ...new TextEncoder().encode(`"}\n`),
]);

const POISON: PoisonCase[] = [
  {
    name: "truncated last line",
    body: `${good}\n${bad({}).slice(0, 40)}`,
    reason: /^line 2: truncated/,
  },
  {
    name: "a line that is not JSON",
    body: `${good}\nnot json at all\n`,
    reason: /^line 2: not JSON/,
  },
  {
    name: "unknown key",
    body: `${good}\n${bad({ colour: "red" })}\n`,
    reason: /^line 2: colour: Invalid key/,
  },
  {
    name: "missing dedupe_key",
    body: `${good}\n${JSON.stringify(noKey)}\n`,
    reason: /^line 2: dedupe_key: Invalid key/,
  },
  {
    name: "bad severity",
    body: `${good}\n${good}\n${bad({ severity: "urgent" })}\n`,
    reason: /^line 3: severity: Invalid type/,
  },
  {
    name: "bad occurred_at",
    body: `${good}\n${bad({ occurred_at: "2024-02-30T10:00:00Z" })}\n`,
    reason: /^line 2: occurred_at: /,
  },
  { name: "invalid UTF-8", body: utf8Bad, reason: /^line 2: invalid UTF-8/ },
  {
    name: "another org",
    body: `${good}\n${JSON.stringify(alert("evil", "e"))}\n`,
    reason: /^line 2: org_id: "evil" is not the task's org "acme"/,
  },
  {
    name: "a NUL the database cannot store",
    body: `${good}\n${bad({ title: "a\u0000b" })}\n`,
    reason: /^line 2: contains U\+0000/,
  },
  {
    name: "a lone surrogate the database cannot store",
    body: `${good}\n${bad({}).replace('"alert bad"', '"alert \\ud800"')}\n`,
    reason: /^line 2: contains U\+0000 or a lone surrogate/,
  },
  {
    name: "an offset PostgreSQL refuses",
    body: `${good}\n${bad({ occurred_at: "2024-01-01T00:00:00+16:00" })}\n`,
    reason: /^line 2: occurred_at: must be an RFC 3339 date-time .*offset within ±15:59/,
  },
  {
    name: "a year PostgreSQL refuses",
    body: `${good}\n${bad({ occurred_at: "0000-01-01T00:00:00Z" })}\n`,
    reason: /^line 2: occurred_at: must be an RFC 3339 date-time .*year 0001–9999/,
  },
  {
    name: "attributes that are an array",
    body: `${good}\n${bad({ attributes: [1, 2] })}\n`,
    reason: /^line 2: attributes: must be a JSON object/,
  },
  {
    name: "a line that is a JSON array",
    body: `${good}\n[1,2]\n`,
    reason: /^line 2: not a JSON object/,
  },
  { name: "an empty line", body: `${good}\n\n${good}\n`, reason: /^line 2: empty line/ },
  {
    name: "an over-long title",
    body: `${good}\n${bad({ title: "x".repeat(1025) })}\n`,
    reason: /^line 2: title: Invalid length/,
  },
  {
    name: "a 2 GB claimed size",
    body: `${good}\n`,
    override: () => ({ batch_size_bytes: 2 * 1024 ** 3 }),
    reason: /batch_size_bytes 2147483648 is over the 67108864 byte cap/,
  },
  {
    name: "a size that does not match",
    body: `${good}\n`,
    override: (b) => ({ batch_size_bytes: b.size + 1 }),
    reason: /the message claims/,
  },
  {
    name: "a URI outside the store (another task's folder)",
    body: `${good}\n`,
    override: (b) => ({ batch_uri: b.uri.replace(b.taskId, randomUUID()) }),
    reason: /is not under file:\/\/.*\/acme\//,
  },
  {
    name: "a URI outside the store (elsewhere)",
    body: `${good}\n`,
    override: () => ({ batch_uri: "file:///etc/passwd" }),
    reason: /is not under/,
  },
  {
    name: "a URI with ..",
    body: `${good}\n`,
    override: (b) => ({ batch_uri: b.uri.replace(b.taskId, `${b.taskId}/..`) }),
    reason: /is not under/,
  },
];

describe("poison batches are dead-lettered with zero rows and a reason naming the line", () => {
  test("every kind, all at once", async () => {
    const sql = db().sql;
    const ids = new Map<string, { id: string; taskId: string }>();
    for (const c of POISON) {
      const b = await putBatch(store().store, c.body ?? `${good}\n`);
      const id = await publishBatchMessage(db().queue(), b, c.override?.(b) ?? {});
      ids.set(c.name, { id, taskId: b.taskId });
    }
    const m = await sinkUntilIdle(db(), store().store);
    expect(m.deadLetters).toBe(POISON.length);
    expect(m.batches).toBe(0);
    expect(m.retries).toBe(0);
    expect(await rowCount(sql)).toBe(0); // not even the good first lines
    for (const c of POISON) {
      const reason = await deadLetterOf(sql, ids.get(c.name)?.id ?? "0");
      expect({ name: c.name, reason }).toEqual({
        name: c.name,
        reason: expect.stringMatching(c.reason),
      });
    }
  }, 30_000);

  test("a missing object is retried, then dead-lettered after MAX_RECEIVES; nothing written", async () => {
    const sql = db().sql;
    const b = await putBatch(store().store, `${good}\n`);
    await store().store.delete(b.uri.slice(store().url.length + 1));
    const id = await publishBatchMessage(db().queue(), b);
    const m = await sinkUntilIdle(db(), store().store, {
      visibilityTimeoutMs: 100,
      maxReceives: 3,
    });
    expect(m.retries).toBe(3);
    expect(m.deadLetters).toBe(0); // the queue moved it, not the sink
    const reason = await deadLetterOf(sql, id);
    expect(reason).toMatch(/^batch object missing: file:.*\(dead-lettered after 3 receives\)$/);
    expect(await rowCount(sql)).toBe(0);
  }, 30_000);
});
