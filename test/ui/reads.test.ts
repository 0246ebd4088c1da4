import { beforeEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { taskClaim } from "../../src/dispatcher/sql/claim";
import { leaseRenew } from "../../src/dispatcher/sql/tasks";
import { alertRowsCapped, outboxPendingCapped, taskCountsCapped } from "../../src/reads/counts";
import { type TaskCursor, type TaskFilter, taskPage, uuidRange } from "../../src/reads/tasks";
import {
  type BucketRange,
  dbNow,
  rowsIngestedBuckets,
  tasksFinishedBuckets,
} from "../../src/reads/throughput";
import { blankReason, groupDeadLetters } from "../../src/ui/dlq";
import { readTaskDetail } from "../../src/ui/task-detail";
import { SealedSeries } from "../../src/ui/throughput";
import { useFreshDatabase } from "../support/db";

/** The dashboard's reads against a real database: pages, counts, series and the timeline. */

const db = useFreshDatabase();
const sql = () => db().sql;

beforeEach(async () => {
  await sql()`TRUNCATE state.tasks, state.task_attempts, state.outbox, data.sink_batches, data.alert_events`;
});

const STATUSES = ["queued", "running", "succeeded", "failed"] as const;

/** 60 tasks over 3 orgs and every status, many sharing a created_at (ties broken by id). */
async function seedTasks(): Promise<void> {
  await sql()`
    INSERT INTO state.tasks (org_id, status, attempt, payload, created_at, lease_expires_at, finished_at)
    SELECT 'org-' || (g % 3),
           (ARRAY['queued','running','succeeded','failed'])[1 + g % 4]::state.task_status,
           CASE WHEN g % 4 = 0 THEN 0 ELSE 1 END, '{}'::jsonb,
           timestamptz '2026-01-01 00:00:00.123456' + make_interval(secs => g / 4),
           CASE WHEN g % 4 = 1 THEN now() + make_interval(secs => CASE WHEN g % 8 = 1 THEN -60 ELSE 60 END) END,
           CASE WHEN g % 4 >= 2 THEN now() END
    FROM generate_series(1, 60) g`;
}

const Ids = v.array(v.object({ id: v.string() }));

async function expected(where: string, order = "created_at DESC, id DESC"): Promise<string[]> {
  const rows = await sql().unsafe(
    `SELECT id::text AS id FROM state.tasks WHERE ${where} ORDER BY ${order}`,
  );
  return v.parse(Ids, [...rows]).map((r) => r.id);
}

async function allPages(p: {
  filter?: TaskFilter;
  orgId?: string;
  idPrefix?: string;
}): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: TaskCursor | undefined;
  let pages = 0;
  for (;;) {
    const page = await taskPage(sql(), { ...p, limit: 7, ...(after ? { after } : {}) });
    pages++;
    ids.push(...page.rows.map((r) => r.id));
    if (page.next === null) return { ids, pages };
    after = page.next;
    if (pages > 100) throw new Error("paging does not end");
  }
}

describe("ui reads: the task list", () => {
  test("keyset pages walk every filter's tasks exactly once, newest first, ties by id", async () => {
    await seedTasks();
    const cases: Array<[Parameters<typeof allPages>[0], string]> = [
      [{}, "true"],
      [{ filter: "succeeded" }, "status = 'succeeded'"],
      [{ orgId: "org-1" }, "org_id = 'org-1'"],
      [{ orgId: "org-2", filter: "queued" }, "org_id = 'org-2' AND status = 'queued'"],
      [{ filter: "expired" }, "status = 'running' AND lease_expires_at <= now()"],
    ];
    for (const [params, where] of cases) {
      const want = await expected(where);
      const got = await allPages(params);
      expect({ params, ids: got.ids }).toEqual({ params, ids: want });
      expect(got.pages).toBe(Math.floor(want.length / 7) + 1);
    }
  });

  test("a running task whose lease is over is marked, one with a live lease is not", async () => {
    await seedTasks();
    const page = await taskPage(sql(), { filter: "running", limit: 100 });
    expect(page.rows.length).toBe(15);
    const [live] =
      await sql()`SELECT count(*)::int AS n FROM state.tasks WHERE lease_expires_at > now()`;
    expect(page.rows.filter((r) => !r.lease_expired).length).toBe(live?.n);
    expect(page.rows.filter((r) => r.lease_expired).length).toBeGreaterThan(0);
    const others = await taskPage(sql(), { filter: "succeeded", limit: 100 });
    expect(others.rows.some((r) => r.lease_expired)).toBe(false);
  });

  test("a search by id is a range of the primary key, by prefix or whole id", async () => {
    await seedTasks();
    const all = await expected("true", "id");
    const first = all[0] ?? "";
    expect(uuidRange("ab-C")).toEqual({
      lo: "abc00000-0000-0000-0000-000000000000",
      hi: "abcfffff-ffff-ffff-ffff-ffffffffffff",
    });
    const whole = await taskPage(sql(), { idPrefix: first, limit: 7 });
    expect(whole.rows.map((r) => r.id)).toEqual([first]);
    const digit = first.slice(0, 1);
    const got = await allPages({ idPrefix: digit });
    expect(got.ids).toEqual(all.filter((id) => id.startsWith(digit)));
    const none = await taskPage(sql(), {
      idPrefix: first,
      filter: "failed",
      orgId: "nobody",
      limit: 7,
    });
    expect(none.rows).toEqual([]);
  });
});

describe("ui reads: counts and throughput", () => {
  test("counts are exact up to the cap, then the planner's estimate, flagged", async () => {
    await seedTasks();
    expect(await taskCountsCapped(sql())).toEqual(
      Object.fromEntries(STATUSES.map((s) => [s, { n: 15, exact: true }])),
    );
    await sql()`ANALYZE state.tasks`;
    const capped = await taskCountsCapped(sql(), { cap: 10 });
    for (const s of STATUSES) {
      expect(capped[s]?.exact).toBe(false);
      expect(capped[s]?.n).toBeGreaterThanOrEqual(11);
      expect(capped[s]?.n).toBeLessThanOrEqual(20);
    }
    await sql()`INSERT INTO state.outbox (queue_name, payload) SELECT 'task_wakeup', '{}' FROM generate_series(1, 5)`;
    expect(await outboxPendingCapped(sql())).toEqual({ n: 5, exact: true });
    expect(await outboxPendingCapped(sql(), { cap: 4 })).toEqual({ n: 5, exact: false });
    expect(await alertRowsCapped(sql())).toEqual({ n: 0, exact: true });
  });

  test("tasks finished and rows ingested land in their 10 s bucket; old buckets are read once, a chunk per refresh", async () => {
    await sql()`
      INSERT INTO state.tasks (org_id, status, payload, finished_at) VALUES
        ('a', 'succeeded', '{}', now() - interval '3 seconds'),
        ('a', 'failed', '{}', now() - interval '4 seconds'),
        ('a', 'succeeded', '{}', now() - interval '35 seconds'),
        ('a', 'succeeded', '{}', now() - interval '5 minutes'),
        ('a', 'succeeded', '{}', now() - interval '20 minutes')`;
    await sql()`
      INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped, committed_at) VALUES
        (gen_random_uuid(), 'a', 1, 'u1', 7, 0, now() - interval '1 second'),
        (gen_random_uuid(), 'a', 1, 'u2', 5, 2, now() - interval '1 second'),
        (gen_random_uuid(), 'a', 1, 'u3', 9, 0, now() - interval '14 minutes')`;
    const o = { bucketSeconds: 10, windowSeconds: 900, sealAfterSeconds: 60, chunkSeconds: 60 };
    const ranges: BucketRange[] = [];
    const finished = new SealedSeries((r) => {
      ranges.push(r);
      return tasksFinishedBuckets(sql(), r);
    }, o);
    const now = await dbNow(sql());
    const first = await finished.series(now);
    expect(first.length).toBe(90);
    // The open minute is read at once; most of the window is not yet.
    expect(first.slice(-7).reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(3);
    expect(first.filter((x) => x === null).length).toBeGreaterThan(60);
    let series = first;
    for (let i = 0; i < 20 && series.includes(null); i++) series = await finished.series(now);
    expect(series.includes(null)).toBe(false);
    expect(series.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(4);
    // No read spans more than the open minute (plus its bucket) or one chunk.
    expect(Math.max(...ranges.map((r) => r.to - r.from))).toBeLessThanOrEqual(70);
    // A sealed bucket is not read again.
    const reads = ranges.length;
    await finished.series(now);
    expect(ranges.length).toBe(reads + 1);

    const rows = new SealedSeries((r) => rowsIngestedBuckets(sql(), r), o);
    let ingested = await rows.series(now);
    // One second ago: in the last bucket, or the one before when now just began a bucket.
    expect((ingested.at(-1) ?? 0) + (ingested.at(-2) ?? 0)).toBe(12);
    for (let i = 0; i < 20 && ingested.includes(null); i++) ingested = await rows.series(now);
    expect(ingested.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(21);
  });
});

describe("ui reads: a task's timeline", () => {
  test("a fenced-out attempt is shown as such, with the writes it made after its fence counted", async () => {
    const [t] =
      await sql()`INSERT INTO state.tasks (org_id, payload) VALUES ('t', '{"alerts": 3}') RETURNING id::text AS id`;
    const taskId = String(t?.id);
    const first = await taskClaim(sql(), { taskId, leaseMs: 1, maxAttempts: 5 });
    expect(first.kind).toBe("claimed");
    await sql()`SELECT pg_sleep(0.01)`;
    const second = await taskClaim(sql(), { taskId, leaseMs: 60_000, maxAttempts: 5 });
    expect(second.kind).toBe("claimed");
    await sql()`
      INSERT INTO state.outbox (queue_name, payload, task_id, attempt) VALUES
        ('buffer_queue', '{"batch_uri": "file:///s/t/2-a.jsonl", "batch_size_bytes": 10}', ${taskId}, 2)`;
    await sql()`
      INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
      VALUES (${taskId}, 't', 2, 'file:///s/t/2-a.jsonl', 3, 0)`;

    const d = await readTaskDetail({ state: sql(), data: sql() }, taskId);
    expect(d?.attempts.map((a) => [a.attempt, a.outcome, a.outcome_source])).toEqual([
      [1, "fenced", "recorded"],
      [2, "running", "derived"],
    ]);
    expect(d?.attempts[0]?.reason).toBe("lease expired; attempt 2 claimed");
    expect(d?.attempts[0]?.writes_after_fence).toBe(0);
    expect(d?.attempts[0]?.ended_at).toBe(d?.attempts[1]?.claimed_at ?? "");
    expect(d?.attempts[1]).toMatchObject({
      batches_published: 1,
      rows_ingested: 3,
      writes_after_fence: null,
    });
    expect(d?.payload).toMatchObject({ alerts: 3, keys: ["alerts"] });

    // Were the fence broken — attempt 1 writing after attempt 2's claim — the page would say so.
    await sql()`
      INSERT INTO state.outbox (queue_name, payload, task_id, attempt) VALUES
        ('buffer_queue', '{"batch_uri": "file:///s/t/1-late.jsonl", "batch_size_bytes": 10}', ${taskId}, 1)`;
    const broken = await readTaskDetail({ state: sql(), data: sql() }, taskId);
    expect(broken?.attempts[0]?.writes_after_fence).toBe(1);

    // An attempt that ended before outcomes were recorded: derived from the next claim.
    await sql()`UPDATE state.task_attempts SET outcome = NULL, ended_at = NULL, reason = NULL WHERE task_id = ${taskId}`;
    await sql()`UPDATE state.tasks SET status = 'succeeded', finished_at = now() WHERE id = ${taskId}`;
    const done = await readTaskDetail({ state: sql(), data: sql() }, taskId);
    expect(done?.attempts.map((a) => [a.outcome, a.outcome_source])).toEqual([
      ["fenced", "derived"],
      ["completed", "derived"],
    ]);
    expect(done?.attempts[0]?.ended_at).toBe(done?.attempts[1]?.claimed_at ?? "");
  });

  test("a heartbeat is still a HOT update with the dashboard's indexes", async () => {
    const [t] =
      await sql()`INSERT INTO state.tasks (org_id, payload) VALUES ('h', '{}') RETURNING id::text AS id`;
    const taskId = String(t?.id);
    const c = await taskClaim(sql(), { taskId, leaseMs: 60_000, maxAttempts: 5 });
    if (c.kind !== "claimed") throw new Error("not claimed");
    const hot = await sql().begin(async (tx) => {
      // The backend's not yet reported counts: read before and after, compare.
      const counts = async () => {
        const [r] = await tx`
          SELECT pg_stat_get_xact_tuples_updated('state.tasks'::regclass)::int AS updated,
                 pg_stat_get_xact_tuples_hot_updated('state.tasks'::regclass)::int AS hot`;
        return v.parse(v.object({ updated: v.number(), hot: v.number() }), r);
      };
      const before = await counts();
      const renewed = await leaseRenew(tx, {
        taskId,
        attempt: c.attempt,
        leaseToken: c.leaseToken,
        orgId: "h",
        leaseMs: 60_000,
      });
      expect(renewed).not.toBeNull();
      const after = await counts();
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    expect(hot).toEqual({ updated: 1, hot: 1 });
  });
});

describe("ui: dead letters", () => {
  test("reasons are grouped with their particulars blanked", () => {
    expect(
      blankReason(
        'line 3: severity: Invalid type: Expected "info" | "low" but received "hihg" (dead-lettered after 5 receives)',
      ),
    ).toBe('line N: severity: Invalid type: Expected "…" | "…" but received "…"');
    expect(blankReason("batch object missing: file:///tmp/x/acme/3f1c/1-a.jsonl")).toBe(
      "batch object missing: <uri>",
    );
    const at = new Date("2026-01-01T00:00:00Z");
    const letter = (id: string, lastError: string | null, receiveCount = 1) => ({
      id,
      queue: "buffer_queue" as const,
      payload: { task_id: `task-${id}` },
      receiveCount,
      lastError,
      createdAt: at,
    });
    const groups = groupDeadLetters([
      letter("1", "line 2: bad"),
      letter("2", "line 7: bad", 3),
      letter("3", null),
    ]);
    expect(groups.map((g) => [g.reason, g.count, g.receives])).toEqual([
      ["line N: bad", 2, { min: 1, max: 3 }],
      ["(no reason recorded)", 1, { min: 1, max: 1 }],
    ]);
    expect(groups[0]?.letters.map((l) => l.task_id)).toEqual(["task-1", "task-2"]);
  });
});
