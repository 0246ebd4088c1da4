import { afterAll, describe, expect, test } from "bun:test";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_OBJECT_STORE_URL, type TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";
import { batchOf, call, claim, drained, messagesFor, newTask } from "./_client";

// Invariant 4: an outbox row committed by a task call survives a kill -9 before the drainer runs.
const db = useFreshDatabase();
const started: TestDispatcher[] = [];
afterAll(async () => {
  for (const d of started) await d.stop();
});

describe("outbox across a crash", () => {
  test("kill -9 after buffer-publish committed, before the drainer published: after a restart the message reaches buffer_queue", async () => {
    const doomed = await startDispatcher({
      databaseUrl: db().url,
      name: "doomed-dispatcher",
      env: { HARNESS_FAILPOINTS: "dispatcher.after_outbox_commit" },
    });
    started.push(doomed);
    const id = await newTask(db().sql);
    await drained(db().sql);
    const c = await claim(doomed, id);
    const res = await call(
      doomed,
      "buffer-publish",
      c.capability_token,
      batchOf(c, TEST_OBJECT_STORE_URL),
    )
      .then((r) => r.status)
      .catch(() => "connection lost");
    expect(res).toBe("connection lost");
    expect(await doomed.role.exited).not.toBe(0);
    expect(doomed.role.proc.signalCode).toBe("SIGKILL");
    // The row is committed and pending; nothing reached the queue.
    const pending = await db()
      .sql`SELECT status FROM state.outbox WHERE task_id = ${id} AND queue_name = 'buffer_queue'`;
    expect([...pending]).toEqual([{ status: "pending" }]);
    expect(await messagesFor(db().sql, "buffer_queue", id)).toHaveLength(0);

    const again = await startDispatcher({ databaseUrl: db().url, name: "restarted-dispatcher" });
    started.push(again);
    const messages = await waitFor(
      async () => {
        const m = await messagesFor(db().sql, "buffer_queue", id);
        return m.length > 0 ? m : undefined;
      },
      { what: "the buffer_queue message after the restart" },
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]?.payload).toMatchObject({ task_id: id, org_id: "acme", attempt: 1 });
    await drained(db().sql);
    expect(await messagesFor(db().sql, "buffer_queue", id)).toHaveLength(1);
  }, 60_000);

  test("two dispatchers drain one outbox together: every row published exactly once", async () => {
    const a = await startDispatcher({ databaseUrl: db().url, name: "drainer-a" });
    const b = await startDispatcher({ databaseUrl: db().url, name: "drainer-b" });
    started.push(a, b);
    await drained(db().sql);
    await db().sql`DELETE FROM state.queue_messages`;
    // 3,000 wakeups inserted in one go, as `harness task create --count 3000` does.
    const { createTasks } = await import("../../src/tasks/create");
    const ids = await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 3000 });
    await drained(db().sql);
    const rows = await db()
      .sql`SELECT payload->>'task_id' AS id FROM state.queue_messages WHERE queue_name = 'task_wakeup'`;
    const seen = rows.map((r) => String(r.id));
    expect(seen).toHaveLength(3000);
    expect(new Set(seen)).toEqual(new Set(ids));
  }, 60_000);
});
