import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { MISSING_SCHEMA } from "../../src/db/errors";
import { WORKER_LOG } from "../../src/worker/logs";
import { testServer, useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_INTERNAL_TOKEN, type TestDispatcher } from "../support/dispatcher";
import { freePort } from "../support/embedded";
import { type Role, runHarness } from "../support/processes";
import { publishPayloads } from "../support/queue";
import { createTasks, startWorker, taskRow, tempStoreUrl, waitForWakeups } from "./helpers";

/**
 * `worker --until-idle` as a script uses it: it waits for the whole pipeline
 * (outbox, queued and running tasks), and never hangs — a missing schema, a
 * dispatcher or a database that stays away, or tasks nothing can wake any
 * more end it with exit 1 and one line on stderr.
 */

const db = useFreshDatabase();
const storeUrl = tempStoreUrl();
let port = 0;
let dispatcher: TestDispatcher | undefined;
let unmigrated = "";
const workers: Role[] = [];

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: db().url,
    INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
    OBJECT_STORE_URL: storeUrl,
    DISPATCHER_URL: `http://127.0.0.1:${port}`,
    LEASE_DURATION_MS: "3000",
    VISIBILITY_TIMEOUT_MS: "3000",
    ...extra,
  };
}

async function dispatcherUp(): Promise<void> {
  const { DISPATCHER_URL: _, ...common } = env();
  dispatcher = await startDispatcher({ databaseUrl: db().url, env: common, port });
}

/** The last line on stderr: the command's one line. */
const lastLine = (stderr: string) => stderr.trimEnd().split("\n").at(-1) ?? "";

beforeAll(async () => {
  port = await freePort();
  const { admin } = await testServer();
  const name = `harness_unmigrated_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const a = connect(admin, { name: "test-admin", max: 1 });
  try {
    await a`CREATE DATABASE ${a(name)}`;
  } finally {
    await a.end();
  }
  const u = new URL(admin);
  u.pathname = `/${name}`;
  unmigrated = u.toString();
});

afterAll(async () => {
  const { admin } = await testServer();
  const a = connect(admin, { name: "test-admin", max: 1 });
  try {
    await a`DROP DATABASE IF EXISTS ${a(new URL(unmigrated).pathname.slice(1))} WITH (FORCE)`;
  } finally {
    await a.end();
  }
});

beforeEach(async () => {
  const sql = db().sql;
  await sql`DELETE FROM state.queue_messages`;
  await sql`DELETE FROM state.outbox`;
  await sql`DELETE FROM state.task_attempts`;
  await sql`DELETE FROM state.tasks`;
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop("SIGKILL")));
  await dispatcher?.stop();
  dispatcher = undefined;
});

describe("worker --until-idle never hangs", () => {
  test("on a database never migrated: exit 1 at once, one line saying to migrate", async () => {
    // --give-up-ms far past the test's timeout: only "at once" can pass.
    const r = await runHarness(
      ["worker", "--until-idle", "--give-up-ms", "600000"],
      env({ DATABASE_URL: unmigrated }),
    );
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toStartWith(
      `harness worker: ${MISSING_SCHEMA} (the state database at`,
    );
    expect(lastLine(r.stderr)).toContain("state.queue_messages");
    expect(r.stdout).toBe("");
  }, 30_000);

  test("a wakeup and no dispatcher: exit 1 after --give-up-ms naming DISPATCHER_URL; the wakeup stays", async () => {
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "1"]);
    await publishPayloads(db().queue(), "task_wakeup", [{ task_id: id }]);
    const r = await runHarness(["worker", "--until-idle", "--give-up-ms", "1500"], env());
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toStartWith(
      `harness worker: the dispatcher at http://127.0.0.1:${port} (DISPATCHER_URL) stayed unavailable for `,
    );
    const [left] = await db().sql`
      SELECT queue_name, last_error FROM state.queue_messages WHERE payload->>'task_id' = ${id}`;
    expect(left?.queue_name).toBe("task_wakeup");
    expect(await taskRow(db().sql, id)).toMatchObject({ status: "queued", attempt: 0 });
  }, 30_000);

  test("tasks only in the outbox and no dispatcher: it does not call that idle; exit 1 after --give-up-ms", async () => {
    await createTasks(env(), "acme", ["--alerts", "1", "--count", "2"]);
    const r = await runHarness(["worker", "--until-idle", "--give-up-ms", "1500"], env());
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toContain(`(DISPATCHER_URL) stayed unavailable for `);
    expect(r.stderr).toContain(`"path":"/internal/backlog"`);
  }, 30_000);

  test("tasks only in the outbox: it waits for a dispatcher that starts later, then exits 0 with every task done", async () => {
    const ids = await createTasks(env(), "acme", ["--alerts", "5", "--count", "3"]);
    const worker = startWorker(env(), ["--until-idle", "--give-up-ms", "60000"]);
    workers.push(worker);
    await worker.waitForLog(
      (l) => l.msg === WORKER_LOG.dispatcherUnavailable && l.path === "/internal/backlog",
      "a failed backlog call",
    );
    await dispatcherUp();
    expect(await worker.exited).toBe(0);
    expect(worker.stdout()).toContain("worker: 3 tasks succeeded, 15 alerts");
    expect(worker.logs.some((l) => l.msg === WORKER_LOG.dispatcherBack)).toBe(true);
    for (const id of ids)
      expect(await taskRow(db().sql, id)).toMatchObject({ status: "succeeded" });
    const [pending] = await db().sql`
      SELECT count(*)::int AS n FROM state.outbox WHERE status = 'pending'
        AND queue_name = 'task_wakeup'`;
    expect(pending?.n).toBe(0);
  }, 60_000);

  test("a task nothing can wake any more (its wakeup dead-lettered): exit 1 after --give-up-ms, pointing at the dlq", async () => {
    await dispatcherUp();
    const [id = ""] = await createTasks(env(), "acme", ["--alerts", "1"]);
    await waitForWakeups(db().sql, [id]);
    await db().sql`UPDATE state.queue_messages SET queue_name = 'task_wakeup.dlq'`;
    const r = await runHarness(["worker", "--until-idle", "--give-up-ms", "1500"], env());
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(
      "harness worker: 1 task(s) stayed queued for 1500 ms with no wakeup left to claim them (dead-lettered? see harness dlq list)",
    );
  }, 30_000);
});

describe("without --until-idle", () => {
  test("a long-running worker on a database never migrated stops at once with the one line (the check before it starts)", async () => {
    const worker = startWorker(env({ DATABASE_URL: unmigrated }));
    workers.push(worker);
    expect(await worker.exited).toBe(1);
    expect(lastLine(worker.stderr())).toStartWith(
      `harness worker: ${MISSING_SCHEMA} (the state database at`,
    );
  }, 30_000);

  test("--give-up-ms alone is a usage error", async () => {
    const r = await runHarness(["worker", "--give-up-ms", "1000"], env());
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toBe("harness worker: --give-up-ms applies only with --until-idle");
  }, 30_000);
});
