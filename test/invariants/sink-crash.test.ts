import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectFailpointKill } from "./crash";
import { TestPlatform } from "./platform";

/**
 * The sink dies by kill -9 between its commit and its ack, in a full
 * pipeline: the committed batch's message is redelivered to the next sink,
 * which writes none of its rows again. Every row exactly once.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 3000, visibilityMs: 1000 });
  await p.startDispatcher();
  for (let i = 0; i < 2; i++) p.startWorker(["--concurrency", "4"]);
});
afterAll(async () => {
  await p.stop();
});

describe("invariants: sink crash", () => {
  test("kill -9 between commit and ack: the batch is redelivered, no row twice, exact rows", async () => {
    const org = "sink-crash";
    const tasks = 20;
    const alerts = 50;
    const doomed = p.startSink(["--concurrency", "1"], {
      HARNESS_FAILPOINTS: "sink.after_commit:3",
    });
    const ids = await p.createTasks(org, tasks, alerts);
    await expectFailpointKill(doomed, "sink.after_commit");
    // The third batch committed and was never acked. Batches in hand together share a
    // commit (src/sink/writer.ts), in the order they come back: the third's group may
    // have committed more, which went unacked too.
    const committed = await p.data
      .sql`SELECT batch_uri FROM data.sink_batches WHERE org_id = ${org} ORDER BY id`;
    expect(committed.length).toBeGreaterThanOrEqual(3);
    const unacked = String(committed[2]?.batch_uri);

    p.startSink(["--concurrency", "2"]);
    await p.waitQuiet(org, ids, 60_000);
    const report = await p.expectInvariants(org);
    expect(report.tasks.succeeded).toBe(tasks);
    expect(report.rows.found).toBe(tasks * alerts);
    const [stored] = await p.data
      .sql`SELECT count(*)::int AS n, count(DISTINCT dedupe_key)::int AS keys FROM data.alert_events WHERE org_id = ${org}`;
    expect(stored).toEqual({ n: tasks * alerts, keys: tasks * alerts });

    // The unacked batch came back and was committed again, adding nothing. (Another batch
    // may be delivered twice too, after a slow moment under load: it adds nothing either.)
    const again = await p.data.sql`
      SELECT rows_inserted, rows_skipped FROM data.sink_batches
      WHERE org_id = ${org} AND batch_uri = ${unacked} ORDER BY id`;
    expect(again.map((r) => [r.rows_inserted, r.rows_skipped])).toEqual([
      [alerts, 0],
      [0, alerts],
    ]);
    const [sum] = await p.data
      .sql`SELECT sum(rows_inserted)::int AS inserted FROM data.sink_batches WHERE org_id = ${org}`;
    expect(sum?.inserted).toBe(tasks * alerts);
  }, 90_000);
});
