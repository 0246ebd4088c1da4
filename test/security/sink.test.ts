import { beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { alertEventsInsertGroup, sinkBatchesRecordAgain } from "../../src/sink/sql";
import { checkBatch } from "../../src/sink/validate";
import { createTasks } from "../../src/tasks/create";
import { EXCESS_LOG } from "../../src/users/excess";
import { claimRaw } from "../dispatcher/_client";
import { runHarness } from "../support/processes";
import { bufferMessageOf, connections, honestAttempt, messageRow } from "./attempts";
import { expectDenied, outcome, useSecurePlatform } from "./platform";

/**
 * A compromised sink, with exactly the environment `harness up` gives it:
 * its own user's STATE and DATA URLs and the object store. It may consume
 * buffer_queue and insert its own rows; nothing else — no task, no key, no
 * wakeup, no state write, no rewrite of stored rows.
 */

const platform = useSecurePlatform();
const as = connections();
const sinkState = () => as(platform().env.sink.STATE_DATABASE_URL ?? "");
const sinkData = () => as(platform().env.sink.DATA_DATABASE_URL ?? "");

let tasks: string[] = [];

beforeAll(async () => {
  tasks = await createTasks(platform().state.sql, {
    orgId: "globex",
    payload: { alerts: 2 },
    count: 2,
  });
});

describe("a compromised sink, with exactly the environment up gives it", () => {
  test("it holds its own user's STATE and DATA URLs and the store: no token, no key", () => {
    const env = platform().env.sink;
    expect(Object.keys(env).sort()).toEqual([
      "DATA_DATABASE_URL",
      "OBJECT_STORE_URL",
      "STATE_DATABASE_URL",
    ]);
    for (const url of [env.STATE_DATABASE_URL, env.DATA_DATABASE_URL])
      expect(new URL(url ?? "").username).toMatch(/^harness_up_[0-9a-f]{8}_sink$/);
  });

  test("reads no task, key, attempt or outbox row, and claims nothing", async () => {
    const s = sinkState();
    await expectDenied({
      tasks: () => s`SELECT payload, lease_token FROM state.tasks`,
      keys: () => s`SELECT private_jwk FROM state.signing_keys`,
      attempts: () => s`SELECT * FROM state.task_attempts`,
      outbox: () => s`SELECT * FROM state.outbox`,
      messages: () => s`SELECT * FROM state.queue_messages`,
    });
    // Without INTERNAL_AUTH_TOKEN, a claim is 401 whatever it sends.
    const res = await claimRaw(platform().dispatcher, tasks[0] ?? "", "guessed-token-0123456789");
    expect(res.status).toBe(401);
  });

  test("consumes no wakeup: task_wakeup is the worker's queue", async () => {
    const s = sinkState();
    const [wakeup] = await platform().state.sql`
      SELECT id::text AS id FROM state.queue_messages WHERE queue_name = 'task_wakeup' LIMIT 1`;
    const id = String(wakeup?.id ?? "0");
    const before = await messageRow(platform().state.sql, id);
    await expectDenied({
      receive: () => s`SELECT * FROM state.queue_receive('task_wakeup', 10, 60000, 5)`,
      ack: () => s`SELECT state.queue_ack('task_wakeup', ARRAY[${id}]::bigint[])`,
      deadLetter: () => s`SELECT state.queue_dead_letter('task_wakeup', ${id}::bigint, 'x')`,
      depth: () => s`SELECT * FROM state.queue_depth('task_wakeup')`,
    });
    const acked = await s`SELECT * FROM state.queue_ack('buffer_queue', ARRAY[${id}]::bigint[])`;
    expect(acked.length).toBe(0);
    expect(await messageRow(platform().state.sql, id)).toEqual(before);
    expect(await outcome(s`SELECT * FROM state.queue_depth('buffer_queue')`)).toBe("ok");
  });

  test("writes nothing in state: no task, no message, no publish", async () => {
    const s = sinkState();
    await expectDenied({
      succeeded: () => s`UPDATE state.tasks SET status = 'succeeded'`,
      insert: () =>
        s`INSERT INTO state.queue_messages (queue_name, payload) VALUES ('task_wakeup', '{}'::jsonb)`,
      publish: () =>
        s`SELECT state.queue_publish('task_wakeup', ARRAY['{}']::jsonb[], ARRAY[NULL]::timestamptz[])`,
      redrive: () => s`SELECT state.queue_redrive('buffer_queue', NULL)`,
    });
  });

  test("ingests with its own user, and never rewrites or removes a row", async () => {
    const p = platform();
    const [task] = tasks;
    const { alerts } = await honestAttempt(p, task ?? "");
    await bufferMessageOf(p.state.sql, task ?? "");
    const r = await runHarness(["sink", "--until-idle"], p.env.sink);
    expect({ code: r.code, warned: r.stderr.includes(EXCESS_LOG.warning) }).toEqual({
      code: 0,
      warned: false,
    });
    const d = sinkData();
    const [rows] =
      await d`SELECT count(*)::int AS n FROM data.alert_events WHERE task_id = ${task ?? ""}`;
    expect(rows?.n).toBe(alerts);
    await expectDenied({
      update: () => d`UPDATE data.alert_events SET org_id = 'acme'`,
      delete: () => d`DELETE FROM data.alert_events`,
      truncate: () => d`TRUNCATE data.alert_events`,
      batches: () => d`DELETE FROM data.sink_batches`,
      create: () => d`CREATE TABLE data.sneaky (id int)`,
    });
    const [still] = await p.data.sql`SELECT count(*)::int AS n FROM data.alert_events`;
    expect(still?.n).toBe(alerts);
  });

  test("its own user writes a group of small batches in one statement, each batch recorded, and records one again", async () => {
    const org = "globex";
    const group = [0, 1].map((i) => {
      const task = randomUUID();
      const line = { dedupe_key: `group-${task}`, source: "s", severity: "low", title: `t${i}` };
      const checked = checkBatch(
        new TextEncoder().encode(
          `${JSON.stringify({ ...line, org_id: org, occurred_at: "2024-05-01T12:00:00Z" })}\n`,
        ),
        org,
      );
      if (!checked.ok) throw new Error(`test batch refused: ${checked.failure.reason}`);
      return {
        taskId: task,
        orgId: org,
        attempt: 1,
        batchUri: `file:///x/${org}/${task}/1-a.jsonl`,
        rows: checked.rows,
      };
    });
    const counts = await alertEventsInsertGroup(sinkData(), group);
    expect(counts).toEqual([
      { rowsInserted: 1, rowsSkipped: 0 },
      { rowsInserted: 1, rowsSkipped: 0 },
    ]);
    const [recorded] = await platform().data.sql`
      SELECT count(*)::int AS n FROM data.sink_batches WHERE task_id = ANY(${group.map((g) => g.taskId)}::uuid[])`;
    expect(recorded?.n).toBe(2);

    // A batch committed before is recorded again by the same user, from its record alone.
    const [first] = group;
    if (first === undefined) throw new Error("no batch in the group");
    const again = await sinkBatchesRecordAgain(sinkData(), first);
    expect(again).toEqual({ rowsInserted: 0, rowsSkipped: 1 });
    const never = await sinkBatchesRecordAgain(sinkData(), { ...first, attempt: 2 });
    expect(never).toBeUndefined();
  });
});
