import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { DeadLetterEnvelope, type QueueName, type QueuePayload } from "../../src/contracts/queue";
import { useFreshDatabase } from "../support/db";
import { TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { runHarness } from "../support/processes";

/**
 * `harness status`, `dlq list` and `dlq redrive` with QUEUE_URL=nats://…,
 * as separate processes. On NATS each queue numbers its own messages (stream
 * sequences), so one id can be a dead letter of two queues at once: redrive
 * by id alone then refuses, naming both, rather than guess.
 */

const db = useFreshDatabase();
const nats = useNatsQueue("dlq_cmd");

const env = () => ({
  DATABASE_URL: db().url,
  QUEUE_URL: TEST_NATS_URL,
  QUEUE_NAMESPACE: nats().namespace,
});

const OPTIONS = { visibilityTimeoutMs: 30_000, maxReceives: 5 };

/** Publishes one message and dead-letters it with `reason`; returns its id. */
async function deadLetter<Q extends QueueName>(
  queue: Q,
  payload: QueuePayload<Q>,
  reason: string,
): Promise<string> {
  const q = nats().queue;
  const [id] = await q.publisher().publish(queue, [{ payload }]);
  const c = await q.consumer(queue, OPTIONS);
  const [m] = await c.receive(1);
  if (m === undefined) throw new Error(`nothing to receive on ${queue}`);
  expect(m.id).toBe(String(id));
  expect(await c.deadLetter(m, reason)).toBe(true);
  return m.id;
}

async function listed(): Promise<DeadLetterEnvelope[]> {
  const r = await runHarness(["dlq", "list", "--json"], env());
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return v.parse(v.array(DeadLetterEnvelope), JSON.parse(r.stdout));
}

const StatusQueues = v.object({
  queues: v.array(
    v.object({
      queue: v.string(),
      ready: v.number(),
      in_flight: v.number(),
      delayed: v.number(),
      dead: v.number(),
    }),
  ),
});

describe("status and dlq on NATS", () => {
  test("the same id dead in two queues: list shows both, status counts them, redrive --id alone refuses and --queue picks one", async () => {
    const wakeup = { task_id: randomUUID() };
    const buffer = {
      task_id: randomUUID(),
      org_id: "acme",
      attempt: 1,
      batch_uri: "file:///tmp/acme/x/1-a.jsonl",
      content_type: "application/x-ndjson" as const,
      batch_size_bytes: 10,
    };
    const a = await deadLetter("task_wakeup", wakeup, "claim kept failing");
    const b = await deadLetter("buffer_queue", buffer, "line 1: severity: Invalid type");
    expect(a).toBe(b);

    const letters = await listed();
    expect(letters.map((d) => [d.id, d.queue, d.last_error, d.receive_count])).toEqual(
      expect.arrayContaining([
        [a, "task_wakeup", "claim kept failing", 1],
        [b, "buffer_queue", "line 1: severity: Invalid type", 1],
      ]),
    );
    expect(letters).toHaveLength(2);

    const status = await runHarness(["status", "--json"], env());
    expect(status.code).toBe(0);
    const depths = v.parse(StatusQueues, JSON.parse(status.stdout)).queues;
    expect(depths).toEqual([
      { queue: "task_wakeup", ready: 0, in_flight: 0, delayed: 0, dead: 1 },
      { queue: "buffer_queue", ready: 0, in_flight: 0, delayed: 0, dead: 1 },
      { queue: "task_completed", ready: 0, in_flight: 0, delayed: 0, dead: 0 },
    ]);

    const ambiguous = await runHarness(["dlq", "redrive", "--id", a], env());
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr.trim()).toBe(
      `harness dlq redrive: id ${a} is a dead letter of task_wakeup and buffer_queue (each queue numbers its own on NATS): add --queue`,
    );
    expect(await listed()).toHaveLength(2);

    const one = await runHarness(["dlq", "redrive", "--id", b, "--queue", "buffer_queue"], env());
    expect({ code: one.code, out: one.stdout.trim() }).toEqual({
      code: 0,
      out: "redrove 1 message(s) from buffer_queue.dlq to buffer_queue",
    });
    const c = await nats().queue.consumer("buffer_queue", OPTIONS);
    const [back] = await c.receive(1);
    expect(back).toMatchObject({ id: b, payload: buffer, receiveCount: 1 });
    expect(back?.lastError).toBe("line 1: severity: Invalid type");
    if (back !== undefined) expect(await c.ack(back)).toBe(true);

    // Now the id is unique again: redrive finds its queue by itself.
    const unknown = await runHarness(["dlq", "redrive", "--id", "424242"], env());
    expect({ code: unknown.code, err: unknown.stderr.trim() }).toEqual({
      code: 1,
      err: "harness dlq redrive: no dead letter with id 424242",
    });
    const byId = await runHarness(["dlq", "redrive", "--id", a], env());
    expect(byId.stdout.trim()).toBe("redrove 1 message(s) from task_wakeup.dlq to task_wakeup");
    const empty = await runHarness(["dlq", "list"], env());
    expect(empty.stdout.trim()).toBe("no dead letters");

    const after = await runHarness(["status", "--json"], env());
    const wakeups = v.parse(StatusQueues, JSON.parse(after.stdout)).queues[0];
    expect(wakeups).toEqual({ queue: "task_wakeup", ready: 1, in_flight: 0, delayed: 0, dead: 0 });
  }, 60_000);
});
