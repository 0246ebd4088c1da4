import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { useFreshDatabase } from "../support/db";
import { TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { runHarness } from "../support/processes";

/** `harness queue publish QUEUE JSON` on both backends, as a separate process. */

const db = useFreshDatabase();
const nats = useNatsQueue("publish_cmd");

const pgEnv = () => ({ DATABASE_URL: db().url });
const natsEnv = () => ({ QUEUE_URL: TEST_NATS_URL, QUEUE_NAMESPACE: nats().namespace });

const wakeup = () => JSON.stringify({ task_id: randomUUID() });

/** Messages on each backend, every queue. */
async function stored(): Promise<{ pg: number; nats: number }> {
  const [row] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
  const depths = await nats().queue.admin().depths();
  return {
    pg: Number(row?.n),
    nats: depths.reduce((sum, d) => sum + d.ready + d.inFlight + d.delayed, 0),
  };
}

describe("harness queue publish", () => {
  test("pgqueue: stores the message and prints its id; the same JSON twice is a duplicate", async () => {
    const json = wakeup();
    const first = await runHarness(["queue", "publish", "task_wakeup", json], pgEnv());
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const second = await runHarness(["queue", "publish", "task_wakeup", json], pgEnv());
    expect(second.code).toBe(0);
    const ids = [first.stdout.trim(), second.stdout.trim()];
    const rows = await db().sql`
      SELECT id::text AS id, payload FROM state.queue_messages WHERE queue_name = 'task_wakeup' ORDER BY id`;
    expect(rows.map((r) => String(r.id))).toEqual(ids);
    for (const r of rows) expect(r.payload).toEqual(JSON.parse(json));
  });

  test("NATS: publishes on the configured namespace and prints the id the receiver sees", async () => {
    const json = wakeup();
    const runs = [
      await runHarness(["queue", "publish", "task_wakeup", json], natsEnv()),
      await runHarness(["queue", "publish", "task_wakeup", json], natsEnv()),
    ];
    for (const r of runs)
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const c = await nats().queue.consumer("task_wakeup", {
      visibilityTimeoutMs: 30_000,
      maxReceives: 5,
    });
    const got = await c.receive(10);
    expect(got.map((m) => m.id)).toEqual(runs.map((r) => r.stdout.trim()));
    for (const m of got) expect(m.payload).toEqual(JSON.parse(json));
    await c.ackBatch(got);
  });

  const refusals: Array<[string, string[], RegExp]> = [
    ["an unknown queue", ["queue", "publish", "task_wakeup.dlq", wakeup()], /QUEUE must be one of/],
    ["text that is not JSON", ["queue", "publish", "task_wakeup", "{task_id:"], /not valid JSON/],
    [
      "a payload that breaks the contract",
      ["queue", "publish", "buffer_queue", wakeup()],
      /breaks the buffer_queue contract/,
    ],
    [
      "an unknown flag",
      ["queue", "publish", "task_wakeup", wakeup(), "--delay", "5"],
      /unknown option --delay/,
    ],
  ];

  for (const [what, args, message] of refusals) {
    test(`refuses ${what} with exit 2 and publishes nothing, on either backend`, async () => {
      const before = await stored();
      for (const env of [pgEnv(), natsEnv()]) {
        const r = await runHarness(args, env);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(message);
      }
      expect(await stored()).toEqual(before);
    });
  }

  test("NATS without its streams: exit 1, saying to run migrate", async () => {
    const r = await runHarness(["queue", "publish", "task_wakeup", wakeup()], {
      ...natsEnv(),
      QUEUE_NAMESPACE: `none_${randomUUID().slice(0, 8)}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/run harness migrate/);
  });
});
