import { afterAll, describe, expect, test } from "bun:test";
import { outboxDrainOnce } from "../../src/dispatcher/drain";
import { createLogger } from "../../src/log";
import type { NatsQueue } from "../../src/queue/nats/backend";
import type { QueueBackend } from "../../src/queue/seam";
import { createTasks } from "../../src/tasks/create";
import { expectFailpointKill } from "../invariants/crash";
import { freshDatabase, type TestDatabase, useFreshDatabase } from "../support/db";
import { startDispatcher, type TestDispatcher } from "../support/dispatcher";
import { TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { waitFor } from "../support/wait";

/**
 * Invariant 4 meets a broker that publishes at once: the outbox drainer
 * publishes a row, then marks it sent, in one database transaction. A
 * dispatcher that dies in between (`dispatcher.after_drain_publish`) leaves
 * the row pending, and the next drainer publishes it again. On pgqueue the
 * first publish was inside the rolled-back transaction, so it never existed;
 * on NATS it is stored, and the second is dropped by `Nats-Msg-Id`. Either
 * way the queue holds the message once. And the dedupe id is unique across
 * the database's lives: a reset database that hands out the same row ids
 * again is not mistaken for a repeat.
 */

const db = useFreshDatabase();
const nats = useNatsQueue("outbox_dedupe");
const dispatchers: TestDispatcher[] = [];
const extraDatabases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.allSettled(dispatchers.map((d) => d.role.stop("SIGKILL")));
  await Promise.allSettled(extraDatabases.map((d) => d.drop()));
});

const FAILPOINT = "dispatcher.after_drain_publish";

/** What a queue holds of `task_wakeup`: every message, received and put back. */
async function wakeups(queue: QueueBackend): Promise<string[]> {
  const [depth] = (await queue.admin().depths()).filter((d) => d.queue === "task_wakeup");
  const held = (depth?.ready ?? 0) + (depth?.inFlight ?? 0) + (depth?.delayed ?? 0);
  const c = await queue.consumer("task_wakeup", { visibilityTimeoutMs: 30_000, maxReceives: 50 });
  const got = await c.receive(100);
  for (const m of got) await c.extendVisibility(m, { visibilityTimeoutMs: 0 });
  expect(got.length).toBe(held);
  return got.map((m) => m.payload.task_id);
}

async function outboxStatus(taskId: string): Promise<string[]> {
  const rows = await db().sql`
    SELECT status::text AS status FROM state.outbox WHERE task_id = ${taskId}::uuid`;
  return rows.map((r) => String(r.status));
}

/** Kills a dispatcher at the failpoint with one task's wakeup, then restarts it; returns the task. */
async function killAtPublishThenRestart(
  env: Record<string, string>,
  between: (taskId: string) => Promise<void>,
): Promise<string> {
  const doomed = await startDispatcher({
    databaseUrl: db().url,
    name: "doomed",
    env: { ...env, HARNESS_FAILPOINTS: FAILPOINT },
  });
  dispatchers.push(doomed);
  const [taskId] = await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 1 });
  if (taskId === undefined) throw new Error("no task created");
  await expectFailpointKill(doomed.role, FAILPOINT);
  expect(await outboxStatus(taskId)).toEqual(["pending"]);
  await between(taskId);
  const again = await startDispatcher({ databaseUrl: db().url, name: "restarted", env });
  dispatchers.push(again);
  await waitFor(async () => (await outboxStatus(taskId)).join() === "sent", {
    what: "the restarted dispatcher to publish the pending row",
  });
  await again.stop();
  return taskId;
}

describe("outbox drainer killed between publish and mark-sent", () => {
  test("pgqueue: the publish was rolled back with the transaction; after a restart the queue holds the message once", async () => {
    const queue = db().queue();
    const taskId = await killAtPublishThenRestart({}, async (id) => {
      expect(await wakeups(queue)).not.toContain(id);
    });
    expect((await wakeups(queue)).filter((id) => id === taskId)).toHaveLength(1);
  }, 60_000);

  test("NATS: the publish is stored at once; after a restart the stream still holds the message once", async () => {
    const t = nats();
    const env = { QUEUE_URL: TEST_NATS_URL, QUEUE_NAMESPACE: t.namespace };
    const taskId = await killAtPublishThenRestart(env, async (id) => {
      expect(await wakeups(t.queue)).toEqual([id]);
    });
    expect(await wakeups(t.queue)).toEqual([taskId]);
    expect((await t.queue.streamInfo("task_wakeup")).state.messages).toBe(1);
    await t.queue.purge();
  }, 60_000);
});

describe("the outbox dedupe id across the database's lives", () => {
  async function drainInto(queue: NatsQueue, state: TestDatabase): Promise<string> {
    const [taskId] = await createTasks(state.sql, {
      orgId: "acme",
      payload: { alerts: 1 },
      count: 1,
    });
    if (taskId === undefined) throw new Error("no task created");
    const r = await outboxDrainOnce(state.sql, {
      limit: 10,
      log: createLogger("test"),
      publisherFor: () => queue.publisher(),
    });
    expect(r).toEqual({ published: 1, rejected: 0 });
    return taskId;
  }

  test("NATS: a reset database reuses row ids, and its messages are still stored, not dropped as repeats", async () => {
    const t = nats();
    await t.queue.purge();
    // Two lives of one state database: clones of one template, so their outbox ids start alike.
    const lives = [await freshDatabase(), await freshDatabase()];
    extraDatabases.push(...lives);
    const published = [];
    for (const life of lives) published.push(await drainInto(t.queue, life));
    const ids = await Promise.all(
      lives.map(async (life) => {
        const [row] = await life.sql`SELECT id::text AS id FROM state.outbox`;
        return String(row?.id);
      }),
    );
    expect(ids[0]).toBe(ids[1]);
    expect((await wakeups(t.queue)).sort()).toEqual(published.sort());
    await t.queue.purge();
  }, 60_000);
});
