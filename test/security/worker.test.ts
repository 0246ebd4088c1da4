import { beforeAll, describe, expect, test } from "bun:test";
import { messagesAckThenReceive } from "../../src/queue/pg/sql";
import { createTasks } from "../../src/tasks/create";
import { EXCESS_LOG } from "../../src/users/excess";
import { call, claim, footprint } from "../dispatcher/_client";
import { spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";
import { bufferMessageOf, connections, honestAttempt, messageRow, mintedToken } from "./attempts";
import { expectDenied, otherDatabase, outcome, useSecurePlatform } from "./platform";

/**
 * A compromised worker (invariant 9, issue 12): it ignores our code and uses
 * every credential `harness up` gives a worker process — its STATE URL, the
 * dispatcher's address, INTERNAL_AUTH_TOKEN and the object store — to try
 * each move that worked before the roles had their own users. Every one is
 * refused by PostgreSQL (42501) or by the dispatcher (401), and a real
 * pipeline afterwards still ends with every task succeeded and every row
 * exactly once, in its task's org.
 */

/** Every task's payload asks for 3 alerts, and the honest attempt wrote 3 too. */
const ALERTS = 3;

const platform = useSecurePlatform();
const as = connections();
const worker = () => as(platform().env.worker.STATE_DATABASE_URL ?? "");

let victims: string[] = [];
let own: string[] = [];

beforeAll(async () => {
  const owner = platform().state.sql;
  victims = await createTasks(owner, { orgId: "globex", payload: { alerts: ALERTS }, count: 3 });
  own = await createTasks(owner, { orgId: "acme", payload: { alerts: ALERTS }, count: 2 });
});

describe("a compromised worker, with exactly the environment up gives it", () => {
  test("it holds its own database user, the dispatcher, the token and the store: no DATA URL, no key", () => {
    const env = platform().env.worker;
    expect(Object.keys(env).sort()).toEqual([
      "DISPATCHER_URL",
      "INTERNAL_AUTH_TOKEN",
      "OBJECT_STORE_URL",
      "STATE_DATABASE_URL",
    ]);
    expect(new URL(env.STATE_DATABASE_URL ?? "").username).toMatch(
      /^harness_up_[0-9a-f]{8}_worker$/,
    );
  });

  test("reads no task: not other orgs' payloads, not lease tokens, not attempts or outbox rows", async () => {
    const [victim] = victims;
    await honestAttempt(platform(), victim ?? "");
    await expectDenied({
      payloads: () => worker()`SELECT org_id, payload FROM state.tasks`,
      leaseTokens: () => worker()`SELECT lease_token FROM state.tasks WHERE org_id = 'globex'`,
      attempts: () => worker()`SELECT lease_token FROM state.task_attempts`,
      outbox: () => worker()`SELECT payload FROM state.outbox`,
      messages: () => worker()`SELECT payload FROM state.queue_messages`,
    });
  });

  test("reads no signing key, and a token it signs itself is refused: 401, nothing changes", async () => {
    await expectDenied({ keys: () => worker()`SELECT private_jwk FROM state.signing_keys` });
    const [, victim] = victims;
    const c = await claim(platform().dispatcher, victim ?? "");
    const before = await footprint(platform().state.sql, c.task_id);
    const tenYears = 10 * 365 * 24 * 3600 * 1000;
    const token = await mintedToken(platform().dispatcher, {
      orgId: "globex",
      taskId: c.task_id,
      attempt: c.attempt,
      ttlMs: tenYears,
    });
    const res = await call(platform().dispatcher, "heartbeat", token, {
      task_id: c.task_id,
      attempt: c.attempt,
      lease_token: c.lease_token,
    });
    expect(res.status).toBe(401);
    expect(await footprint(platform().state.sql, c.task_id)).toEqual(before);
  });

  test("publishes no buffer message for another org's task: not by table, function or rewrite", async () => {
    const [, , unclaimed] = victims;
    const forged = {
      task_id: unclaimed,
      org_id: "globex",
      attempt: 1,
      batch_uri: `${platform().store.url}/globex/${unclaimed}/1-forged.jsonl`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    };
    const w = worker();
    await expectDenied({
      insert: () =>
        w`INSERT INTO state.queue_messages (queue_name, payload) VALUES ('buffer_queue', ${w.json(forged)})`,
      publish: () =>
        w`SELECT state.queue_publish('buffer_queue', ARRAY[${JSON.stringify(forged)}]::jsonb[], ARRAY[NULL]::timestamptz[])`,
      rewrite: () =>
        w`UPDATE state.queue_messages SET queue_name = 'buffer_queue', payload = ${w.json(forged)}`,
    });
    const found = await platform().state.sql`
      SELECT count(*)::int AS n FROM state.queue_messages
      WHERE queue_name = 'buffer_queue' AND payload->>'task_id' = ${unclaimed ?? ""}`;
    expect(found[0]?.n).toBe(0);
  });

  test("changes no task: cannot set one succeeded, by table or by API without a capability", async () => {
    const [task] = own;
    const w = worker();
    await expectDenied({
      succeeded: () => w`UPDATE state.tasks SET status = 'succeeded' WHERE id = ${task ?? ""}`,
      deleted: () => w`DELETE FROM state.tasks`,
      outbox: () =>
        w`INSERT INTO state.outbox (queue_name, payload) VALUES ('task_completed', '{}'::jsonb)`,
      attempts: () => w`UPDATE state.task_attempts SET outcome = 'completed'`,
    });
    const res = await call(platform().dispatcher, "complete", undefined, {
      task_id: task,
      attempt: 1,
      lease_token: crypto.randomUUID(),
    });
    expect(res.status).toBe(401);
    const [row] = await platform().state
      .sql`SELECT status FROM state.tasks WHERE id = ${task ?? ""}`;
    expect(row?.status).toBe("queued");
  });

  test("cannot delete, hide or dead-letter an honest batch's message after its complete", async () => {
    const [victim] = victims;
    const id = await bufferMessageOf(platform().state.sql, victim ?? "");
    const before = await messageRow(platform().state.sql, id);
    const w = worker();
    await expectDenied({
      delete: () => w`DELETE FROM state.queue_messages WHERE id = ${id}::bigint`,
      ack: () => w`SELECT state.queue_ack('buffer_queue', ARRAY[${id}]::bigint[])`,
      deadLetter: () => w`SELECT state.queue_dead_letter('buffer_queue', ${id}::bigint, 'gone')`,
      extend: () =>
        w`SELECT state.queue_extend('buffer_queue', ${id}::bigint, 'infinity'::timestamptz, NULL)`,
      recordError: () => w`SELECT state.queue_record_error('buffer_queue', ${id}::bigint, 'x')`,
      receive: () => w`SELECT * FROM state.queue_receive('buffer_queue', 10, 60000, 5)`,
    });
    // Through its own queue's functions, a message id of another queue is no one's.
    const acked = await w`SELECT * FROM state.queue_ack('task_wakeup', ARRAY[${id}]::bigint[])`;
    const [dead] =
      await w`SELECT state.queue_dead_letter('task_wakeup', ${id}::bigint, 'gone') AS ok`;
    const [hidden] =
      await w`SELECT state.queue_extend('task_wakeup', ${id}::bigint, 'infinity'::timestamptz, NULL) AS ok`;
    const [noted] =
      await w`SELECT state.queue_record_error('task_wakeup', ${id}::bigint, 'x') AS ok`;
    expect({ acked: acked.length, dead: dead?.ok, hidden: hidden?.ok, noted: noted?.ok }).toEqual({
      acked: 0,
      dead: false,
      hidden: false,
      noted: false,
    });
    expect(await messageRow(platform().state.sql, id)).toEqual(before);
  });

  test("writes no row in data: not with its credentials on the data database, nor on its own", async () => {
    const p = platform();
    const url = p.env.worker.STATE_DATABASE_URL ?? "";
    const onData = as(otherDatabase(url, p.data.name));
    const row = (sql: typeof onData) =>
      sql`INSERT INTO data.alert_events (dedupe_key, org_id, task_id, source, severity, title, occurred_at)
          VALUES ('forged', 'globex', ${victims[0] ?? ""}, 'x', 'high', 'forged', now())`;
    await expectDenied({
      dataDatabase: () => row(onData),
      dataDatabaseRead: () => onData`SELECT * FROM data.alert_events`,
      ownDatabase: () => row(worker()),
    });
  });

  test("reaches task_wakeup only through its functions, and no other queue", async () => {
    const w = worker();
    expect(await outcome(w`SELECT * FROM state.queue_depth('task_wakeup')`)).toBe("ok");
    expect(await outcome(w`SELECT * FROM state.queue_receive('task_wakeup', 0, 1000, 5)`)).toBe(
      "ok",
    );
    await expectDenied({
      table: () => w`SELECT count(*) FROM state.queue_messages`,
      bufferQueue: () => w`SELECT * FROM state.queue_depth('buffer_queue')`,
      taskCompleted: () => w`SELECT * FROM state.queue_receive('task_completed', 10, 1000, 5)`,
      redrive: () => w`SELECT state.queue_redrive('buffer_queue', NULL)`,
      check: () => w`SELECT state.queue_consumer_check('buffer_queue')`,
    });
    expect(
      await outcome(w`SELECT * FROM state.queue_receive('task_wakeup.dlq', 10, 1000, 5)`),
    ).toBe("22023");
  });

  test("acks and receives task_wakeup in one statement as its own user; buffer_queue's are refused", async () => {
    const w = worker();
    // An id that names no message, and a receive that hides nothing for long.
    const p = { ids: ["0"], max: 1, visibilityTimeoutMs: 1, maxReceives: 100 };
    expect(await outcome(messagesAckThenReceive(w, { queue: "task_wakeup", ...p }))).toBe("ok");
    await expectDenied({
      bufferQueue: () => messagesAckThenReceive(w, { queue: "buffer_queue", ...p }),
    });
  });

  test("cannot give itself more: no other role, no grant, no object of its own in state", async () => {
    const w = worker();
    await expectDenied({
      setRole: () => w`SET ROLE harness_dispatcher`,
      setOwner: () => w.unsafe(`SET ROLE ${ownerName()}`),
      grant: () => w`GRANT harness_dispatcher TO CURRENT_USER`,
      createRole: () => w`CREATE ROLE sneaky`,
      table: () => w`CREATE TABLE state.sneaky (id int)`,
      replaceFunction: () =>
        w`CREATE OR REPLACE FUNCTION state.queue_consumer_check(p_queue text) RETURNS void LANGUAGE sql AS 'SELECT'`,
    });
  });

  test("afterwards a real pipeline, each role with up's environment, still holds every invariant", async () => {
    const p = platform();
    const w = spawnHarness("worker", ["worker", "--concurrency", "4"], {
      ...p.env.worker,
      ...p.settings,
    });
    const s = spawnHarness("sink", ["sink"], { ...p.env.sink, ...p.settings });
    const all = [...victims, ...own];
    const expected = all.length * ALERTS;
    try {
      await waitFor(
        async () => {
          const [t] = await p.state.sql`
            SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS n FROM state.tasks`;
          const [r] = await p.data.sql`SELECT count(*)::int AS n FROM data.alert_events`;
          return t?.n === all.length && r?.n === expected;
        },
        { what: "every task succeeded with all its rows", timeoutMs: 60_000 },
      );
    } finally {
      expect([await w.stop(), await s.stop()]).toEqual([0, 0]);
    }
    const orgs = new Map(
      (await p.state.sql`SELECT id::text AS id, org_id FROM state.tasks`).map((t) => [
        String(t.id),
        String(t.org_id),
      ]),
    );
    const rows = await p.data.sql`SELECT task_id::text AS task_id, org_id FROM data.alert_events`;
    expect(rows.filter((r) => orgs.get(String(r.task_id)) !== r.org_id)).toEqual([]);
    const left = await p.state.sql`
      SELECT queue_name, count(*)::int AS n FROM state.queue_messages
      WHERE queue_name IN ('buffer_queue', 'buffer_queue.dlq', 'task_wakeup.dlq') GROUP BY 1`;
    expect([...left]).toEqual([]);
    const warned = [...w.logs, ...s.logs].filter((l) => l.msg === EXCESS_LOG.warning);
    expect(warned).toEqual([]);
  }, 90_000);
});

function ownerName(): string {
  return new URL(platform().state.url).username || "postgres";
}
