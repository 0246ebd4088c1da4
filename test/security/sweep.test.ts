import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { REAPER_LOG } from "../../src/dispatcher/reaper";
import { createTasks } from "../../src/tasks/create";
import { generatedAlert } from "../../src/worker/alerts";
import { spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";
import { connections } from "./attempts";
import { type SecurePlatform, useSecurePlatform } from "./platform";

/**
 * Invariant 8 against invariant 9's worker: with nothing but the environment
 * `harness up` gives a worker, it receives every `task_wakeup` and acks it
 * without claiming its task — its own queue's right. The dispatcher's sweep
 * wakes each such task again (VISIBILITY_TIMEOUT_MS × MAX_RECEIVES = 1 s
 * here), so once an honest worker runs, every task still ends succeeded with
 * exactly its rows. The same for a wakeup dead-lettered.
 */

const ALERTS = 3;
const VISIBILITY_TIMEOUT_MS = 500;
const MAX_RECEIVES = 2;

const platform = useSecurePlatform({
  VISIBILITY_TIMEOUT_MS: String(VISIBILITY_TIMEOUT_MS),
  MAX_RECEIVES: String(MAX_RECEIVES),
});
const as = connections();

const Received = v.array(v.object({ id: v.string(), task_id: v.string() }));

/**
 * The compromised worker: through the queue functions its user may call,
 * receives every wakeup there is and acks it, claiming nothing, until each
 * task's wakeup was eaten `times` times (its first, then the sweep's).
 */
async function eatWakeups(p: SecurePlatform, tasks: readonly string[], times: number) {
  const w = as(p.env.worker.STATE_DATABASE_URL ?? "");
  const eaten = new Map<string, number>();
  await waitFor(
    async () => {
      const got = v.parse(Received, [
        ...(await w`
          SELECT id::text AS id, payload->>'task_id' AS task_id
          FROM state.queue_receive('task_wakeup', 100, ${VISIBILITY_TIMEOUT_MS}, ${MAX_RECEIVES})`),
      ]);
      const ids = got.map((m) => m.id);
      if (ids.length > 0) await w`SELECT * FROM state.queue_ack('task_wakeup', ${ids}::bigint[])`;
      for (const m of got) eaten.set(m.task_id, (eaten.get(m.task_id) ?? 0) + 1);
      return tasks.every((t) => (eaten.get(t) ?? 0) >= times);
    },
    { what: `every task's wakeup eaten ${times} times`, timeoutMs: 30_000 },
  );
}

/** Runs an honest worker and sink, each with up's environment, until every task succeeded with its rows. */
async function honestPipeline(p: SecurePlatform, tasks: readonly string[]): Promise<void> {
  const worker = spawnHarness("worker", ["worker", "--concurrency", "4"], {
    ...p.env.worker,
    ...p.settings,
  });
  const sink = spawnHarness("sink", ["sink"], { ...p.env.sink, ...p.settings });
  try {
    await waitFor(
      async () => {
        const [t] = await p.state.sql`
          SELECT count(*)::int AS n FROM state.tasks
          WHERE id = ANY(${tasks}::uuid[]) AND status = 'succeeded'`;
        const [r] = await p.data.sql`
          SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ANY(${tasks}::uuid[])`;
        return t?.n === tasks.length && r?.n === tasks.length * ALERTS;
      },
      { what: "every task succeeded with all its rows", timeoutMs: 60_000 },
    );
  } finally {
    expect([await worker.stop(), await sink.stop()]).toEqual([0, 0]);
  }
}

/** Each task's rows are exactly the ones its alerts describe, in its org, each once. */
async function expectExactRows(p: SecurePlatform, tasks: readonly string[]): Promise<void> {
  const owners = await p.state.sql`
    SELECT id::text AS id, org_id FROM state.tasks WHERE id = ANY(${tasks}::uuid[])`;
  const expected = owners.flatMap((t) =>
    Array.from({ length: ALERTS }, (_, i) => {
      const a = generatedAlert(String(t.org_id), String(t.id), i);
      return `${a.org_id}/${a.dedupe_key}/${t.id}`;
    }),
  );
  const rows = await p.data.sql`
    SELECT org_id, dedupe_key, task_id::text AS task_id FROM data.alert_events
    WHERE task_id = ANY(${tasks}::uuid[])`;
  const found = rows.map((r) => `${r.org_id}/${r.dedupe_key}/${r.task_id}`);
  expect(found.sort()).toEqual(expected.sort());
}

describe("a compromised worker that acks wakeups without claiming", () => {
  test("every task it starved is woken again by the sweep and ends succeeded with exactly its rows", async () => {
    const p = platform();
    const tasks = [
      ...(await createTasks(p.state.sql, {
        orgId: "globex",
        payload: { alerts: ALERTS },
        count: 3,
      })),
      ...(await createTasks(p.state.sql, { orgId: "acme", payload: { alerts: ALERTS }, count: 3 })),
    ];
    // Its first wakeup and the sweep's first: eaten, and nothing was claimed.
    await eatWakeups(p, tasks, 2);
    const rows = await p.state.sql`
      SELECT status::text AS status, attempt FROM state.tasks WHERE id = ANY(${tasks}::uuid[])`;
    expect(rows.map((r) => [r.status, r.attempt])).toEqual(tasks.map(() => ["queued", 0]));
    const swept = p.dispatcher.role.logs.filter((l) => l.msg === REAPER_LOG.swept);
    expect(swept.length).toBeGreaterThan(0);

    await honestPipeline(p, tasks);
    await expectExactRows(p, tasks);
    const [attempts] = await p.state.sql`
      SELECT count(*)::int AS n FROM state.task_attempts WHERE task_id = ANY(${tasks}::uuid[])`;
    expect(attempts?.n).toBe(tasks.length);
    // The dispatcher's own user could count the waiting wakeups (its grant): no fallback.
    expect(p.dispatcher.role.logs.filter((l) => l.msg === REAPER_LOG.uncounted)).toEqual([]);
  }, 120_000);

  test("a wakeup dead-lettered by hand: the sweep wakes the task and an honest worker finishes it", async () => {
    const p = platform();
    const [task = ""] = await createTasks(p.state.sql, {
      orgId: "acme",
      payload: { alerts: ALERTS },
      count: 1,
    });
    const moved = await waitFor(
      async () => {
        const r = await p.state.sql`
          UPDATE state.queue_messages SET queue_name = 'task_wakeup.dlq', last_error = 'by hand'
          WHERE queue_name = 'task_wakeup' AND payload->>'task_id' = ${task} RETURNING id`;
        return r.length === 1;
      },
      { what: "the wakeup published, then dead-lettered" },
    );
    expect(moved).toBe(true);
    await honestPipeline(p, [task]);
    await expectExactRows(p, [task]);
    const [dead] = await p.state.sql`
      SELECT count(*)::int AS n FROM state.queue_messages
      WHERE queue_name = 'task_wakeup.dlq' AND payload->>'task_id' = ${task}`;
    expect(dead?.n).toBe(1);
    const [sweptRow] = await p.state.sql`
      SELECT count(*)::int AS n FROM state.outbox
      WHERE task_id = ${task} AND queue_name = 'task_wakeup' AND attempt IS NOT NULL`;
    expect(sweptRow?.n).toBe(1);
  }, 120_000);
});
