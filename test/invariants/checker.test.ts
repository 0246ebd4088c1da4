import { describe, expect, test } from "bun:test";
import { taskClaim } from "../../src/dispatcher/sql/claim";
import { leaseReapExpired } from "../../src/dispatcher/sql/reap";
import { checkInvariants, FENCING_INVARIANT } from "../../src/verify/checker";
import { dedupeKey } from "../../src/worker/alerts";
import { useFreshDatabase } from "../support/db";
import { useNatsQueue } from "../support/nats";
import { publishPayloads } from "../support/queue";

/**
 * The checker must be able to fail: from a state where every invariant
 * holds, each kind of damage makes exactly its invariant fail.
 */

const db = useFreshDatabase();
const natsQueue = useNatsQueue("checker");
const org = "checker";
const FENCING = FENCING_INVARIANT;
const COMPLETED = "each succeeded task completed exactly once, by its last attempt";

async function seedGoodRun(): Promise<string> {
  const sql = db().sql;
  await sql`DELETE FROM state.tasks`;
  await sql`DELETE FROM state.outbox`;
  await sql`DELETE FROM state.task_attempts`;
  await sql`DELETE FROM state.queue_messages`;
  await sql`DELETE FROM data.alert_events`;
  const [task] = await sql`
    INSERT INTO state.tasks (org_id, status, attempt, payload) VALUES (${org}, 'succeeded', 2, ${sql.json({ alerts: 3 })})
    RETURNING id::text AS id`;
  const id = String(task?.id);
  await sql`INSERT INTO state.task_attempts (task_id, attempt, lease_token, claimed_at) VALUES
    (${id}, 1, gen_random_uuid(), now() - interval '10 seconds'),
    (${id}, 2, gen_random_uuid(), now() - interval '5 seconds')`;
  // Attempt 1 published before it was fenced; attempt 2 published and completed.
  await sql`INSERT INTO state.outbox (queue_name, payload, status, task_id, attempt, created_at) VALUES
    ('buffer_queue', '{}', 'sent', ${id}, 1, now() - interval '8 seconds'),
    ('buffer_queue', '{}', 'sent', ${id}, 2, now() - interval '2 seconds'),
    ('task_completed', '{}', 'sent', ${id}, 2, now() - interval '1 second')`;
  for (let i = 0; i < 3; i++) {
    await sql`INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
      VALUES (${dedupeKey(id, i)}, ${org}, ${id}, 's', 'info', 't', now())`;
  }
  return id;
}

async function failing(): Promise<string[]> {
  const report = await checkInvariants(db().sql, db().sql, {
    orgId: org,
    queues: db().queue().admin(),
  });
  return report.invariants.filter((i) => !i.ok).map((i) => i.name);
}

describe("invariant checker", () => {
  test("a good run passes", async () => {
    await seedGoodRun();
    expect(await failing()).toEqual([]);
  });

  test("a missing row fails the rows invariant", async () => {
    const id = await seedGoodRun();
    await db().sql`DELETE FROM data.alert_events WHERE dedupe_key = ${dedupeKey(id, 1)}`;
    expect(await failing()).toEqual(["exactly the expected rows, each once, with the task's org"]);
  });

  test("an extra row, or a row under another org, fails the rows invariant", async () => {
    let id = await seedGoodRun();
    await db()
      .sql`INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
      VALUES (${dedupeKey(id, 99)}, ${org}, ${id}, 's', 'info', 't', now())`;
    expect(await failing()).toEqual(["exactly the expected rows, each once, with the task's org"]);
    id = await seedGoodRun();
    await db()
      .sql`UPDATE data.alert_events SET org_id = 'intruder' WHERE dedupe_key = ${dedupeKey(id, 0)}`;
    expect(await failing()).toContain("exactly the expected rows, each once, with the task's org");
  });

  test("an outbox row from attempt 1 after attempt 2 was claimed fails the fencing invariant", async () => {
    const id = await seedGoodRun();
    await db()
      .sql`INSERT INTO state.outbox (queue_name, payload, status, task_id, attempt, created_at)
      VALUES ('buffer_queue', '{}', 'sent', ${id}, 1, now() - interval '1 second')`;
    expect(await failing()).toEqual([FENCING]);
  });

  test("the reaper's wakeup for attempt 1, committed after attempt 2's claim began, is not a stale write", async () => {
    const sql = db().sql;
    const id = await seedGoodRun();
    await sql`UPDATE state.tasks SET status = 'running', attempt = 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() - interval '1 second' WHERE id = ${id}`;
    await sql`DELETE FROM state.task_attempts WHERE attempt = 2`;
    // The claim's transaction begins first, which fixes its now(); the reaper locks the
    // row first and writes its wakeup; then the claim takes attempt 2.
    await sql.begin(async (tx) => {
      expect(await leaseReapExpired(sql, { limit: 10 })).toBe(1);
      const claim = await taskClaim(tx, { taskId: id, leaseMs: 60_000, maxAttempts: 5 });
      expect(claim.kind).toBe("claimed");
    });
    const [race] = await sql`
      SELECT o.created_at >= a.claimed_at AS after_claim FROM state.outbox o
      JOIN state.task_attempts a ON a.task_id = o.task_id AND a.attempt = 2
      WHERE o.task_id = ${id} AND o.queue_name = 'task_wakeup' AND o.attempt = 1`;
    expect(race?.after_claim).toBe(true);
    const report = await checkInvariants(sql, sql, { orgId: org, queues: db().queue().admin() });
    expect(report.invariants.find((i) => i.name === FENCING)?.ok).toBe(true);
    // The same timing for attempt 1's own batch is a stale write.
    await sql`INSERT INTO state.outbox (queue_name, payload, status, task_id, attempt)
      VALUES ('buffer_queue', '{}', 'sent', ${id}, 1)`;
    const again = await checkInvariants(sql, sql, { orgId: org, queues: db().queue().admin() });
    expect(again.invariants.find((i) => i.name === FENCING)?.ok).toBe(false);
  });

  test("a second completion, or one by a fenced attempt, fails the completion invariant", async () => {
    const id = await seedGoodRun();
    await db()
      .sql`INSERT INTO state.outbox (queue_name, payload, status, task_id, attempt, created_at)
      VALUES ('task_completed', '{}', 'sent', ${id}, 2, now())`;
    // Written after the first completion: also a stale write.
    expect(await failing()).toEqual([FENCING, COMPLETED]);
    const again = await seedGoodRun();
    await db()
      .sql`UPDATE state.outbox SET attempt = 1 WHERE task_id = ${again} AND queue_name = 'task_completed'`;
    // Attempt 1 completing after attempt 2's claim is a stale write as well.
    expect(await failing()).toEqual([FENCING, COMPLETED]);
  });

  test("a task still running fails the no-task-stuck invariant", async () => {
    const id = await seedGoodRun();
    await db().sql`UPDATE state.tasks SET status = 'running' WHERE id = ${id}`;
    const failed = await failing();
    expect(failed).toContain("every task finished (no task stuck)");
    expect(failed).toContain(COMPLETED);
  });

  test("a pending outbox row or a live message fails the drained invariant; a dead letter its own", async () => {
    let id = await seedGoodRun();
    await db()
      .sql`INSERT INTO state.outbox (queue_name, payload, task_id) VALUES ('task_wakeup', ${db().sql.json({ task_id: id })}, ${id})`;
    expect(await failing()).toEqual(["the outbox drained and the queues are empty"]);
    id = await seedGoodRun();
    await db()
      .sql`INSERT INTO state.queue_messages (queue_name, payload, last_error) VALUES ('buffer_queue.dlq', ${db().sql.json({ task_id: id })}, 'poison')`;
    expect(await failing()).toEqual(["no dead letters except the injected poison"]);
    await seedGoodRun();
    await publishPayloads(db().queue(), "task_wakeup", [{ task_id: crypto.randomUUID() }]);
    expect(await failing()).toEqual(["the outbox drained and the queues are empty"]);
  });

  test("on NATS the same findings come from the broker, through the seam", async () => {
    const nats = natsQueue().queue;
    const onNats = async () => {
      const r = await checkInvariants(db().sql, db().sql, { orgId: org, queues: nats.admin() });
      return r.invariants.filter((i) => !i.ok).map((i) => i.name);
    };
    const id = await seedGoodRun();
    expect(await onNats()).toEqual([]);
    // A message of another run's task is still a message the pipeline left behind.
    await publishPayloads(nats, "buffer_queue", [
      {
        task_id: crypto.randomUUID(),
        org_id: org,
        attempt: 1,
        batch_uri: "file:///tmp/x.jsonl",
        content_type: "application/x-ndjson",
        batch_size_bytes: 1,
      },
    ]);
    expect(await onNats()).toEqual(["the outbox drained and the queues are empty"]);
    await nats.purge();
    const [m] = await publishPayloads(nats, "task_wakeup", [{ task_id: id }]);
    const c = await nats.consumer("task_wakeup", { visibilityTimeoutMs: 30_000, maxReceives: 5 });
    const [received] = await c.receive(1);
    expect(received?.id).toBe(m);
    if (received !== undefined) await c.deadLetter(received, "poison");
    expect(await onNats()).toEqual(["no dead letters except the injected poison"]);
    // Pgqueue's table holds nothing of it: the finding came from the broker.
    const [rows] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
    expect(rows?.n).toBe(0);
  });

  test("a rejected outbox row of the run's tasks fails its own invariant", async () => {
    const id = await seedGoodRun();
    await db().sql`
      UPDATE state.outbox SET status = 'rejected', error = 'refused by the queue'
      WHERE task_id = ${id} AND attempt = 2`;
    expect(await failing()).toEqual(["no outbox row of the run's tasks was rejected"]);
  });
});
