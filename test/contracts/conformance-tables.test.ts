import { describe, expect, test } from "bun:test";
import { ConformanceChecker } from "../support/conformance";
import { useFreshDatabase } from "../support/db";

const db = useFreshDatabase();
const TASK = "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f";

describe("conformance over the state tables", () => {
  test("checks every queue message, dead letter, outbox row and task payload", async () => {
    const sql = db().sql;
    const buffer = {
      task_id: TASK,
      org_id: "acme",
      attempt: 1,
      batch_uri: `file:///s/acme/${TASK}/1-a.jsonl`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    };
    await sql`INSERT INTO state.tasks (id, org_id, payload) VALUES
      (${TASK}, 'acme', ${sql.json({ alerts: 3 })}),
      (gen_random_uuid(), 'acme', ${sql.json(["alerts", 3])})`;
    await sql`INSERT INTO state.queue_messages (queue_name, payload) VALUES
      ('task_wakeup', ${sql.json({ task_id: TASK })}),
      ('buffer_queue.dlq', ${sql.json(buffer)}),
      ('buffer_queue', ${sql.json({ ...buffer, org_id: "" })})`;
    await sql`INSERT INTO state.outbox (queue_name, payload) VALUES
      ('task_completed', ${sql.json({ task_id: TASK, org_id: "acme", attempt: 1, completed_at: "2025-06-01T00:00:00Z" })}),
      ('task_wakeup', ${sql.json({ task: TASK })})`;

    const checker = await ConformanceChecker.load();
    expect(await checker.checkQueueTables(sql)).toBe(7);
    expect(checker.mismatches.map((m) => [m.contract, m.problems[0]])).toEqual([
      ["buffer_queue", "/org_id must NOT have fewer than 1 characters"],
      ["task_wakeup", "(root) must have required property 'task_id'"],
      ["task_payload", "(root) must be object"],
    ]);
    expect(checker.mismatches[1]?.where).toMatch(/^queue task_wakeup outbox row \d+$/);
  }, 60_000);
});
