import { afterAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { NatsQueue } from "../../src/queue/nats/backend";
import { describeNatsUrl } from "../../src/queue/nats/connect";
import { useFreshDatabase } from "../support/db";
import { TEST_NATS_URL, uniqueNamespace } from "../support/nats";
import { runHarness } from "../support/processes";

/** `harness migrate` with QUEUE_URL set: the NATS side of migrate creates the streams, idempotently. */

const db = useFreshDatabase();
const namespace = uniqueNamespace("migrate");
let nats: NatsQueue | undefined;

afterAll(async () => {
  await nats?.drop();
  await nats?.close();
});

const env = (extra: Record<string, string> = {}) => ({
  DATABASE_URL: db().url,
  QUEUE_URL: TEST_NATS_URL,
  QUEUE_NAMESPACE: namespace,
  ...extra,
});

describe("harness migrate on NATS", () => {
  test("two at once create every stream and consumer once; a third finds them up to date; a new visibility timeout updates the consumers", async () => {
    const runs = await Promise.all([
      runHarness(["migrate"], env()),
      runHarness(["migrate"], env()),
    ]);
    for (const r of runs)
      expect({
        code: r.code,
        stderr: r.stderr
          .split("\n")
          .filter((l) => !l.startsWith("{"))
          .join(""),
      }).toEqual({ code: 0, stderr: "" });
    expect(runs.map((r) => r.stdout).join("")).toContain(`created stream ${namespace}_task_wakeup`);

    nats = await NatsQueue.open({ url: TEST_NATS_URL, namespace, name: "migrate-test" });
    const c = await nats.consumer("task_wakeup", { visibilityTimeoutMs: 30_000, maxReceives: 5 });
    const [id] = await nats
      .publisher()
      .publish("task_wakeup", [{ payload: { task_id: randomUUID() } }]);
    expect((await c.receive(1)).map((m) => m.id)).toEqual([String(id)]);

    const again = await runHarness(["migrate"], env());
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      `queues (NATS at ${describeNatsUrl(TEST_NATS_URL)}, namespace ${namespace}): up to date`,
    );

    const longer = await runHarness(["migrate"], env({ VISIBILITY_TIMEOUT_MS: "45000" }));
    expect(longer.code).toBe(0);
    expect(longer.stdout).toContain(`updated consumer ${namespace}_task_wakeup`);
    expect((await nats.streamInfo("task_wakeup")).state.messages).toBe(1);
  }, 60_000);
});
