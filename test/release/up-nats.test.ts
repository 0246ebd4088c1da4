import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsQueue } from "../../src/queue/nats/backend";
import { describeNatsUrl } from "../../src/queue/nats/connect";
import { EXCESS_LOG } from "../../src/users/excess";
import { type TestDatabase, useFreshDatabase } from "../support/db";
import { TEST_NATS_URL, uniqueNamespace } from "../support/nats";
import { runHarness } from "../support/processes";

/**
 * `harness up` on a broker the user already has: `--queue nats://…`, or
 * QUEUE_URL in the environment. up creates the namespace's streams itself,
 * every role's messages go through them (none through state.queue_messages),
 * and `.harness/env` carries the queue's settings for the next shell.
 */

const db = useFreshDatabase();
const dirs: string[] = [];
const namespaces: string[] = [];
afterAll(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  for (const namespace of namespaces) {
    const q = await NatsQueue.open({ url: TEST_NATS_URL, namespace, name: "up-test" });
    await q.drop();
    await q.close();
  }
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), "harness-up-nats-"));
  dirs.push(dir);
  return dir;
}

/** How many messages ever went into a namespace's task_wakeup stream, and how many are left. */
async function wakeupStream(namespace: string): Promise<{ published: number; left: number }> {
  const q = await NatsQueue.open({ url: TEST_NATS_URL, namespace, name: "up-test" });
  try {
    const info = await q.streamInfo("task_wakeup");
    return { published: info.state.last_seq, left: info.state.messages };
  } finally {
    await q.close();
  }
}

/** Whether pgqueue ever stored a message in this database. */
async function pgqueueUsed(d: TestDatabase): Promise<boolean> {
  const [row] = await d.sql`SELECT is_called FROM state.queue_messages_id_seq`;
  return row?.is_called === true;
}

describe("harness up on NATS", () => {
  test("--queue nats://…: streams made by up, every message through the broker, none through the state database; .harness/env carries the queue", async () => {
    const namespace = uniqueNamespace("up_flag");
    namespaces.push(namespace);
    const cwd = folder();
    const r = await runHarness(
      ["up", "--demo", "5", "--workers", "1", "--queue", TEST_NATS_URL],
      { DATABASE_URL: db().url, QUEUE_NAMESPACE: namespace },
      { cwd },
    );
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toContain(
      `, queues on NATS at ${describeNatsUrl(TEST_NATS_URL)} (namespace ${namespace}); logs in`,
    );
    expect(r.stdout).toContain(
      "summary: 5 succeeded, 0 failed of 5 tasks; 50 rows ingested (expected 50); 0 dead letters",
    );
    expect(await wakeupStream(namespace)).toEqual({ published: 5, left: 0 });
    expect(await pgqueueUsed(db())).toBe(false);
    // Each role only what it needs: on NATS the worker holds no database, the sink only DATA.
    for (const role of ["worker-1", "sink"]) {
      const log = readFileSync(join(cwd, ".harness", "logs", `${role}.log`), "utf8");
      expect(log).toContain('"queue":"nats"');
      expect({ role, warned: log.includes(EXCESS_LOG.warning) }).toEqual({ role, warned: false });
    }
    const env = readFileSync(join(cwd, ".harness", "env"), "utf8");
    expect(env).toContain(`export QUEUE_URL='${TEST_NATS_URL}'\n`);
    expect(env).toContain(`export QUEUE_NAMESPACE='${namespace}'\n`);

    // The settings up wrote reach the same queues: status through them reads the broker.
    const status = await runHarness(["status", "--json"], {
      DATABASE_URL: db().url,
      QUEUE_URL: TEST_NATS_URL,
      QUEUE_NAMESPACE: namespace,
    });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).tasks).toMatchObject({ succeeded: 5, queued: 0 });
  }, 120_000);

  test("QUEUE_URL in the environment does the same; a bad --queue is a usage error", async () => {
    const namespace = uniqueNamespace("up_env");
    namespaces.push(namespace);
    const r = await runHarness(
      ["up", "--demo", "2", "--workers", "1"],
      { DATABASE_URL: db().url, QUEUE_URL: TEST_NATS_URL, QUEUE_NAMESPACE: namespace },
      { cwd: folder() },
    );
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(r.stdout).toContain("summary: 2 succeeded, 0 failed of 2 tasks; 20 rows ingested");
    expect(await wakeupStream(namespace)).toEqual({ published: 2, left: 0 });
    expect(await pgqueueUsed(db())).toBe(false);

    const cwd = folder();
    const bad = await runHarness(
      ["up", "--queue", "redis://x"],
      { DATABASE_URL: db().url },
      { cwd },
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe(
      "harness up: --queue must be nats://host:port[,host:port…] (leave it unset for pgqueue in the state database)",
    );
  }, 120_000);
});
