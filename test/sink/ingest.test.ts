import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MAX_LINE_BYTES } from "../../src/contracts/alert";
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

/** Puts one batch of `lines` for `org` (as `attempt` of its task), publishes it and runs the sink until idle. */
async function putAndIngest(lines: readonly unknown[], org: string, attempt = 1) {
  const b = await putBatch(store().store, jsonl(lines), { org, attempt });
  await publishBatchMessage(db().queue(), b);
  return sinkUntilIdle(db(), store().store);
}

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

  test("a committed batch delivered again is recorded again unread; a small one is read again", async () => {
    const sql = db().sql;
    const large = await putBatch(store().store, jsonl(goodLines("acme", "r", 1000)));
    const small = await putBatch(store().store, jsonl(goodLines("acme", "s", 10)));
    await publishBatchMessage(db().queue(), large);
    await publishBatchMessage(db().queue(), small);
    expect(await sinkUntilIdle(db(), store().store)).toMatchObject({ rowsInserted: 1010 });
    // Both objects gone: the large batch's record answers for it (0 inserted, its
    // 1,000 rows skipped, acked); the small one is fetched again, fails, and stays.
    for (const b of [large, small]) rmSync(fileURLToPath(b.uri));
    await publishBatchMessage(db().queue(), large);
    const smallAgain = await publishBatchMessage(db().queue(), small);
    const m = await sinkUntilIdle(db(), store().store, { maxReceives: 1 });
    expect(m).toMatchObject({ batches: 1, rowsInserted: 0, rowsSkipped: 1000, deadLetters: 0 });
    expect(m.retries).toBeGreaterThan(0);
    const records = await sql`
      SELECT rows_inserted, rows_skipped FROM data.sink_batches
      WHERE batch_uri = ${large.uri} ORDER BY id`;
    expect(records.map((r) => [r.rows_inserted, r.rows_skipped])).toEqual([
      [1000, 0],
      [0, 1000],
    ]);
    expect(await rowCount(sql)).toBe(1010);
    expect(
      await sql`SELECT 1 FROM state.queue_messages WHERE id = ${smallAgain}::bigint`,
    ).toHaveLength(1);
  }, 30_000);

  test("a later attempt's large batch whose keys are stored but one (or stored for another org) inserts exactly the missing", async () => {
    const sql = db().sql;
    // Every key but the last stored for acme, and every key stored for another org;
    // then a second attempt's batch, whose keys are looked up first.
    const lines = goodLines("acme", "m", 600);
    await putAndIngest(lines.slice(0, 599), "acme");
    await putAndIngest(goodLines("other", "m", 600), "other");
    const m = await putAndIngest(lines, "acme", 2);
    expect(m).toMatchObject({ batches: 1, rowsInserted: 1, rowsSkipped: 599, deadLetters: 0 });
    // The first key missing: the look-up stops there, and the batch goes the ordinary way.
    const fresh = goodLines("acme", "n", 600);
    await putAndIngest(fresh.slice(1), "acme");
    const m2 = await putAndIngest(fresh, "acme", 2);
    expect(m2).toMatchObject({ batches: 1, rowsInserted: 1, rowsSkipped: 599 });
    const [n] = await sql`
      SELECT count(*) FILTER (WHERE org_id = 'acme')::int AS acme,
             count(*) FILTER (WHERE org_id = 'other')::int AS other FROM data.alert_events`;
    expect(n).toEqual({ acme: 1200, other: 600 });
    const [last] = await sql`
      SELECT rows_inserted, rows_skipped FROM data.sink_batches ORDER BY id DESC LIMIT 1`;
    expect(last).toEqual({ rows_inserted: 1, rows_skipped: 599 });
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

  test("dedupe keys are per org: another org's lines with our keys suppress none of our rows", async () => {
    const sql = db().sql;
    const globexTask = randomUUID();
    const keys = [0, 1, 2].map((i) => `${globexTask}:${i}`);
    // An acme task publishes lines with globex's task's keys first…
    const squat = await putBatch(store().store, jsonl(keys.map((k) => alert("acme", k))));
    await publishBatchMessage(db().queue(), squat);
    await sinkUntilIdle(db(), store().store);
    // …then globex's own task publishes its batch.
    const own = await putBatch(store().store, jsonl(keys.map((k) => alert("globex", k))), {
      org: "globex",
      taskId: globexTask,
    });
    await publishBatchMessage(db().queue(), own);
    const m = await sinkUntilIdle(db(), store().store);
    expect(m).toMatchObject({ batches: 1, rowsInserted: 3, rowsSkipped: 0, deadLetters: 0 });
    const rows = await sql`
      SELECT org_id, task_id::text AS task_id, count(*)::int AS n FROM data.alert_events
      GROUP BY org_id, task_id ORDER BY org_id`;
    expect(rows.map((r) => [r.org_id, r.task_id, r.n])).toEqual([
      ["acme", squat.taskId, 3],
      ["globex", globexTask, 3],
    ]);
    // Within one org a key still dedupes: globex again adds nothing.
    await publishBatchMessage(db().queue(), own);
    expect(await sinkUntilIdle(db(), store().store)).toMatchObject({
      rowsInserted: 0,
      rowsSkipped: 3,
    });
  });

  test("numbers, nesting and timestamps at the edge of the rules are stored exactly as sent", async () => {
    const sql = db().sql;
    const numbers = "[9007199254740992,-9007199254740992,0.1,1.0,1e2,5e-324,-0,123456789012345]";
    const line = JSON.stringify(
      alert("acme", "edge", {
        occurred_at: "9999-12-31T23:59:59.9999994Z",
        attributes: { deep: nested(62), numbers: "placeholder" },
      }),
    ).replace('"placeholder"', numbers);
    const early = JSON.stringify(
      alert("acme", "early", { occurred_at: "0001-01-01T00:00:00.0000004+00:00" }),
    );
    await publishBatchMessage(db().queue(), await putBatch(store().store, jsonl([line, early])));
    const m = await sinkUntilIdle(db(), store().store);
    expect(m).toMatchObject({ batches: 1, rowsInserted: 2, deadLetters: 0, retries: 0 });
    const rows = await sql`
      SELECT dedupe_key, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at,
             attributes -> 'numbers' AS numbers, jsonb_path_query_first(attributes,
               ('$.deep' || repeat('.a', 61))::jsonpath) AS innermost
      FROM data.alert_events ORDER BY dedupe_key`;
    expect(rows.map((r) => [r.dedupe_key, r.at])).toEqual([
      ["early", "0001-01-01 00:00:00.000000"],
      ["edge", "9999-12-31 23:59:59.999999"],
    ]);
    expect(rows[1]?.numbers).toEqual([
      9007199254740992, -9007199254740992, 0.1, 1, 100, 5e-324, 0, 123456789012345,
    ]);
    expect(rows[1]?.innermost).toEqual({});
  });

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

/** Put into the offending bytes of many cases: no reason may quote it. */
const SECRET = "s3cr3t-from-the-batch";
/** An object nested `levels` deep: `{"a":{"a":…{}}}`. */
const nested = (levels: number): Record<string, unknown> => {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
};
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
    body: `${good}\n${SECRET}:x:0:0:root:/root:/bin/bash\n`,
    reason: /^line 2: not JSON$/,
  },
  {
    name: "unknown key",
    body: `${good}\n${bad({ [SECRET]: "red" })}\n`,
    reason: /^line 2: an unknown field$/,
  },
  {
    name: "missing dedupe_key",
    body: `${good}\n${JSON.stringify(noKey)}\n`,
    reason: /^line 2: dedupe_key: missing$/,
  },
  {
    name: "bad severity",
    body: `${good}\n${good}\n${bad({ severity: SECRET })}\n`,
    reason: /^line 3: severity: Invalid type: expected \("info" \| "low"/,
  },
  {
    name: "a title of the wrong type",
    body: `${good}\n${bad({ title: [SECRET] })}\n`,
    reason: /^line 2: title: Invalid type: expected string$/,
  },
  {
    name: "bad occurred_at",
    body: `${good}\n${bad({ occurred_at: "2024-02-30T10:00:00Z" })}\n`,
    reason: /^line 2: occurred_at: /,
  },
  { name: "invalid UTF-8", body: utf8Bad, reason: /^line 2: invalid UTF-8/ },
  {
    name: "another org",
    body: `${good}\n${JSON.stringify(alert(SECRET, "e"))}\n`,
    reason: /^line 2: org_id: not the task's org "acme"$/,
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
    body: `${good}\n${bad({ title: SECRET.repeat(100) })}\n`,
    reason: /^line 2: title: Invalid length: expected <=1024$/,
  },
  {
    name: "a line longer than 1 MiB",
    body: `${good}\n${bad({ attributes: { pad: "x".repeat(MAX_LINE_BYTES) } })}\n${good}\n`,
    reason: /^line 2: longer than 1048576 bytes$/,
  },
  {
    name: "a number past the largest double (1e400)",
    body: `${good}\n${bad({}).replace('"n":3', '"n":1e400')}\n`,
    reason: /^line 2: attributes: must hold only finite numbers within ±2\^53/,
  },
  {
    name: "a 30-digit integer",
    body: `${good}\n${bad({}).replace('"n":3', '"n":123456789012345678901234567890')}\n`,
    reason: /^line 2: attributes: must hold only finite numbers within ±2\^53/,
  },
  {
    name: "-(2^53 + 1), which parses to -2^53",
    body: `${good}\n${bad({}).replace('"n":3', '"n":-9007199254740993')}\n`,
    reason: /^line 2: attributes: a number has more digits than a 64-bit float keeps/,
  },
  {
    name: "a fraction with more digits than a double keeps",
    body: `${good}\n${bad({}).replace('"n":3', '"n":0.1000000000000000055511151231257827')}\n`,
    reason: /^line 2: attributes: a number has more digits than a 64-bit float keeps/,
  },
  {
    name: "a number that underflows to zero (1e-400)",
    body: `${good}\n${bad({}).replace('"n":3', '"n":1e-400')}\n`,
    reason: /^line 2: attributes: a number has more digits than a 64-bit float keeps/,
  },
  {
    name: "a timestamp PostgreSQL would round into year 10000",
    body: `${good}\n${bad({ occurred_at: "9999-12-31T23:59:59.999999999Z" })}\n`,
    reason: /^line 2: occurred_at: must keep its date once PostgreSQL rounds it/,
  },
  {
    name: "a timestamp whose rounding rolls the date over",
    body: `${good}\n${bad({ occurred_at: "2024-02-28T23:59:59.9999996+01:00" })}\n`,
    reason: /^line 2: occurred_at: must keep its date/,
  },
  {
    name: "a timestamp in year 10000 UTC",
    body: `${good}\n${bad({ occurred_at: "9999-12-31T23:30:00-01:00" })}\n`,
    reason: /^line 2: occurred_at: must keep its date .*within years 0001–9999 in UTC/,
  },
  {
    name: "attributes nested 100,000 levels deep",
    body: `${good}\n${bad({}).replace('"n":3', `"n":${"[".repeat(100_000)}${"]".repeat(100_000)}`)}\n`,
    reason: /^line 2: attributes: must nest at most 63 levels \(a batch line at most 64\)$/,
  },
  {
    name: "a line nested 65 levels deep",
    body: `${good}\n${bad({ attributes: nested(64) })}\n`,
    reason: /^line 2: attributes: must nest at most 63 levels/,
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
      expect({ name: c.name, quotes: reason?.includes(SECRET) }).toEqual({
        name: c.name,
        quotes: false,
      });
    }
  }, 30_000);

  test("a batch that is a symlink, or lies under one, is poison 'symlink'; its target is never read", async () => {
    const sql = db().sql;
    const root = fileURLToPath(store().url);
    // Outside the store: a file of valid acme lines (mode 0600), and a folder holding one.
    const outside = mkdtempSync(join(tmpdir(), "harness-outside-"));
    try {
      const body = jsonl([alert("acme", `${SECRET}-0`)]);
      writeFileSync(join(outside, "1-x.jsonl"), body, { mode: 0o600 });
      const size = Buffer.byteLength(body);
      const asFile = randomUUID();
      mkdirSync(join(root, "acme", asFile), { recursive: true });
      symlinkSync(join(outside, "1-x.jsonl"), join(root, "acme", asFile, "1-x.jsonl"));
      const asFolder = randomUUID();
      symlinkSync(outside, join(root, "acme", asFolder));
      const ids: string[] = [];
      for (const taskId of [asFile, asFolder]) {
        const uri = `${store().url}/acme/${taskId}/1-x.jsonl`;
        ids.push(
          await publishBatchMessage(db().queue(), { taskId, orgId: "acme", attempt: 1, uri, size }),
        );
      }
      const m = await sinkUntilIdle(db(), store().store);
      expect(m).toMatchObject({ deadLetters: 2, batches: 0, retries: 0 });
      for (const id of ids) {
        const reason = await deadLetterOf(sql, id);
        expect(reason).toMatch(/^symlink: file:.* is or lies under a symbolic link/);
        expect(reason).not.toContain(SECRET);
      }
      expect(await rowCount(sql)).toBe(0);
    } finally {
      rmSync(outside, { recursive: true, force: true });
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
