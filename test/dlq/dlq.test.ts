import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { DeadLetterEnvelope } from "../../src/contracts/queue";
import {
  alert,
  goodLines,
  jsonl,
  publishBatchMessage,
  putBatch,
  rowCount,
  sinkUntilIdle,
  useTempStore,
} from "../sink/helpers";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { publishPayloads } from "../support/queue";

const db = useFreshDatabase();
const store = useTempStore();

const env = () => ({ DATABASE_URL: db().url, OBJECT_STORE_URL: store().url });

describe("harness dlq", () => {
  test("list shows the reason; redrive puts it back; once the batch is fixed it is ingested", async () => {
    const sql = db().sql;
    // Line 3 has a bad severity of the same length as the good one, so the fix keeps the size.
    const lines = [...goodLines("acme", "r", 2), alert("acme", "r-2", { severity: "hihg" })];
    const b = await putBatch(store().store, jsonl(lines));
    const id = await publishBatchMessage(db().queue(), b);
    expect((await sinkUntilIdle(db(), store().store)).deadLetters).toBe(1);

    const listed = await runHarness(["dlq", "list", "--json"], env());
    expect(listed.code).toBe(0);
    const letters = v.parse(v.array(DeadLetterEnvelope), JSON.parse(listed.stdout));
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ id, queue: "buffer_queue", receive_count: 1 });
    expect(letters[0]?.last_error).toMatch(/^line 3: severity: Invalid type/);
    expect(letters[0]?.payload).toMatchObject({ task_id: b.taskId, batch_uri: b.uri });

    const human = await runHarness(["dlq", "list", "--queue", "buffer_queue"], env());
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`task ${b.taskId}`);
    expect(human.stdout).toContain("reason: line 3: severity:");

    // Fix the batch in place, then redrive just that message.
    const fixed = jsonl([...goodLines("acme", "r", 2), alert("acme", "r-2")]);
    expect(Buffer.byteLength(fixed)).toBe(b.size);
    await store().store.put(b.uri.slice(store().url.length + 1), fixed, {
      contentType: "application/x-ndjson",
    });
    const redriven = await runHarness(["dlq", "redrive", "--id", id], env());
    expect(redriven.code).toBe(0);
    expect(redriven.stdout.trim()).toBe(
      "redrove 1 message(s) from buffer_queue.dlq to buffer_queue",
    );
    const [back] =
      await sql`SELECT queue_name, receive_count FROM state.queue_messages WHERE id = ${id}::bigint`;
    expect(back).toEqual({ queue_name: "buffer_queue", receive_count: 0 });

    const r = await runHarness(["sink", "--until-idle", "--idle-ms", "200"], env());
    expect(r.code).toBe(0);
    expect(await rowCount(sql, { taskId: b.taskId })).toBe(3);
    const empty = await runHarness(["dlq", "list"], env());
    expect(empty.stdout.trim()).toBe("no dead letters");
  }, 30_000);

  test("redrive by queue moves every dead letter of it; unknown ids and queues are refused", async () => {
    const sql = db().sql;
    await sql`DELETE FROM state.queue_messages`;
    for (let i = 0; i < 3; i++) {
      const [m] = await publishPayloads(db().queue(), "task_wakeup", [
        { task_id: crypto.randomUUID() },
      ]);
      await sql`UPDATE state.queue_messages SET queue_name = 'task_wakeup.dlq', last_error = 'boom' WHERE id = ${m ?? "0"}::bigint`;
    }
    const r = await runHarness(["dlq", "redrive", "--queue", "task_wakeup"], env());
    expect(r.stdout.trim()).toBe("redrove 3 message(s) from task_wakeup.dlq to task_wakeup");
    const [n] =
      await sql`SELECT count(*)::int AS n FROM state.queue_messages WHERE queue_name = 'task_wakeup'`;
    expect(n?.n).toBe(3);

    const unknown = await runHarness(["dlq", "redrive", "--id", "999999"], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe("harness dlq redrive: no dead letter with id 999999");
    const badQueue = await runHarness(["dlq", "list", "--queue", "nope"], env());
    expect(badQueue.code).toBe(2);
    expect(badQueue.stderr).toContain(
      "--queue must be one of task_wakeup, buffer_queue, task_completed",
    );
  }, 30_000);
});
