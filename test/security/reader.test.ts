import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createTasks } from "../../src/tasks/create";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { removeUsers } from "../support/users";
import { connections } from "./attempts";
import { expectDenied, outcome } from "./platform";

/**
 * `harness_reader` (status, dlq list, the dashboard): reads both databases
 * but never a signing key, writes nothing, and redrives
 * dead letters only with `--redrive` (membership of harness_redriver).
 */

const db = useFreshDatabase();
const as = connections();
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 6)}`;
const reader = `reader_${suffix}`;
const redriver = `redriver_${suffix}`;
const owner = () => ({ DATABASE_URL: db().url });
let readerEnv: Record<string, string> = {};
let redriverEnv: Record<string, string> = {};

function parseLines(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

async function deadLetter(): Promise<string> {
  const [row] = await db().sql`
    INSERT INTO state.queue_messages (queue_name, payload, last_error)
    VALUES ('task_wakeup.dlq', ${db().sql.json({ task_id: crypto.randomUUID() })}, 'test')
    RETURNING id::text AS id`;
  return String(row?.id);
}

beforeAll(async () => {
  const [a, b] = await Promise.all([
    runHarness(["user", "add", "--role", "reader", reader], owner()),
    runHarness(["user", "add", "--role", "reader", "--redrive", redriver], owner()),
  ]);
  expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, "", ""]);
  readerEnv = parseLines(a.stdout);
  redriverEnv = parseLines(b.stdout);
  await createTasks(db().sql, { orgId: "acme", payload: { alerts: 1 }, count: 2 });
});

afterAll(() => removeUsers([reader, redriver]));

describe("harness_reader", () => {
  test("status and dlq list work with its URLs", async () => {
    const id = await deadLetter();
    const status = await runHarness(["status", "--json"], readerEnv);
    expect({ code: status.code, stderr: status.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(status.stdout).tasks.queued).toBe(2);
    const list = await runHarness(["dlq", "list", "--json"], readerEnv);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).map((d: { id: string }) => d.id)).toContain(id);
  });

  test("reads no signing key, and writes nothing", async () => {
    const r = as(readerEnv.STATE_DATABASE_URL ?? "");
    // Tasks and attempts whole, lease tokens included (the dashboard shows them).
    expect(await outcome(r`SELECT * FROM state.tasks`)).toBe("ok");
    expect(await outcome(r`SELECT * FROM state.task_attempts`)).toBe("ok");
    await expectDenied({
      keys: () => r`SELECT * FROM state.signing_keys`,
      insertTask: () =>
        r`INSERT INTO state.tasks (org_id, payload) VALUES ('acme', '{"alerts": 1}'::jsonb)`,
      updateMessage: () => r`UPDATE state.queue_messages SET receive_count = 0`,
      deleteOutbox: () => r`DELETE FROM state.outbox`,
      deleteRow: () => r`DELETE FROM data.alert_events`,
      receive: () => r`SELECT * FROM state.queue_receive('task_wakeup', 1, 1000, 5)`,
      publish: () =>
        r`SELECT state.queue_publish('task_wakeup', ARRAY['{}']::jsonb[], ARRAY[NULL]::timestamptz[])`,
      redrive: () => r`SELECT state.queue_redrive('task_wakeup', NULL)`,
    });
  });

  test("dlq redrive is refused without --redrive, and works with it", async () => {
    const id = await deadLetter();
    const refused = await runHarness(["dlq", "redrive", "--id", id], readerEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toContain("permission denied");
    const [still] = await db().sql`SELECT queue_name FROM state.queue_messages WHERE id = ${id}`;
    expect(still?.queue_name).toBe("task_wakeup.dlq");
    const done = await runHarness(["dlq", "redrive", "--id", id], redriverEnv);
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: "" });
    const [moved] = await db().sql`SELECT queue_name FROM state.queue_messages WHERE id = ${id}`;
    expect(moved?.queue_name).toBe("task_wakeup");
  });
});
