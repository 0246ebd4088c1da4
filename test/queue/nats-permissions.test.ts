import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import {
  connect,
  type NatsConnection,
  PermissionViolationError,
  type Status,
} from "@nats-io/transport-node";
import type { NatsServerProcess } from "../../src/platform/nats-server";
import { NatsQueue } from "../../src/queue/nats/backend";
import { namesFor } from "../../src/queue/nats/names";
import { NATS_USERS, ROLES, type Role, renderAccounts } from "../../src/queue/nats/permissions";
import type { Message } from "../../src/queue/seam";
import { ownNatsServer, tempDir, useOwnNats } from "../support/nats";
import { waitFor } from "../support/wait";

useOwnNats();

/**
 * Least privilege on the broker (invariant 9): deploy/nats/accounts.conf on
 * a nats-server of this test's own. Each role's user can do its job through
 * NatsQueue, and the worker's user is refused everything else.
 */

const ACCOUNTS = resolve(import.meta.dir, "../../deploy/nats/accounts.conf");
const names = namesFor("harness");
const passwords = Object.fromEntries(ROLES.map((r) => [r, `pw-${r}-${randomUUID()}`]));
const password = (role: Role) => passwords[role] ?? "";

let server: NatsServerProcess;
const opened: NatsQueue[] = [];

function urlFor(role: Role): string {
  return `nats://${NATS_USERS[role]}:${encodeURIComponent(password(role))}@127.0.0.1:${server.port}`;
}

async function queueAs(role: Role): Promise<NatsQueue> {
  const q = await NatsQueue.open({ url: urlFor(role), name: role });
  opened.push(q);
  return q;
}

beforeAll(async () => {
  // The broker's users exactly as deployed; listen address and store are the test's own.
  const dir = tempDir("perm");
  copyFileSync(ACCOUNTS, join(dir, "accounts.conf"));
  server = await ownNatsServer({
    name: "perm",
    dir,
    config: "include ./accounts.conf\n",
    env: Object.fromEntries(
      ROLES.map((r) => [`HARNESS_NATS_${r.toUpperCase()}_PASSWORD`, password(r)]),
    ),
  });
  const owner = await queueAs("owner");
  await owner.ensure({ visibilityTimeoutMs: 30_000 });
});

afterAll(async () => {
  await Promise.all(opened.map((q) => q.close()));
  await server?.stop();
});

const wakeup = () => ({ payload: { task_id: randomUUID() } });
const buffer = () => ({
  payload: {
    task_id: randomUUID(),
    org_id: "org-a",
    attempt: 1,
    batch_uri: "file:///tmp/x.jsonl",
    content_type: "application/x-ndjson" as const,
    batch_size_bytes: 10,
  },
});

describe("deploy/nats/accounts.conf", () => {
  test("is the rendering of src/queue/nats/permissions.ts for the default namespace", () => {
    expect(readFileSync(ACCOUNTS, "utf8")).toBe(renderAccounts(names));
  });

  test("each role's user does its whole job through NatsQueue", async () => {
    const dispatcher = (await queueAs("dispatcher")).publisher();
    await dispatcher.publish("task_wakeup", [wakeup(), wakeup(), wakeup()]);
    await dispatcher.publish("task_wakeup", [
      { ...wakeup(), availableAt: new Date(Date.now() + 300), dedupeId: randomUUID() },
    ]);
    await dispatcher.publish("buffer_queue", [buffer()]);
    await dispatcher.publish("task_completed", [
      {
        payload: {
          task_id: randomUUID(),
          org_id: "org-a",
          attempt: 1,
          completed_at: new Date().toISOString(),
        },
      },
    ]);

    const worker = await (await queueAs("worker")).consumer("task_wakeup", {
      visibilityTimeoutMs: 200,
      maxReceives: 5,
    });
    const woken = worker.wait(100);
    const [a, b, c] = await worker.receive(3);
    await woken;
    if (a === undefined || b === undefined || c === undefined)
      throw new Error("worker got too few");
    expect(await worker.extendVisibility(a, { visibilityTimeoutMs: 10_000 })).toBe(true);
    await worker.recordError(b, "claim refused");
    expect(await worker.deadLetter(c, "poison")).toBe(true);
    expect(await worker.ack(a)).toBe(true);
    const again: Message<"task_wakeup">[] = [];
    await waitFor(
      async () => {
        for (const m of await worker.receive(5)) {
          if (!again.some((x) => x.id === m.id)) again.push(m);
        }
        return again.length >= 2;
      },
      { what: "the errored and the delayed wakeup" },
    );
    expect(await worker.ackBatch(again)).toBe(2);
    expect((await worker.depth()).ready).toBe(0);

    const sink = await (await queueAs("sink")).consumer("buffer_queue", {
      visibilityTimeoutMs: 30_000,
      maxReceives: 5,
    });
    const [batch] = await sink.receive(1);
    if (batch === undefined) throw new Error("sink got nothing");
    expect(await sink.ack(batch)).toBe(true);

    const reader = (await queueAs("reader")).admin();
    const depths = await reader.depths();
    expect(depths.find((d) => d.queue === "task_wakeup")?.dead).toBe(1);
    expect(depths.find((d) => d.queue === "task_completed")?.ready).toBe(1);
    const letters = await reader.listDeadLetters({});
    expect(letters.map((l) => l.lastError)).toEqual(["poison"]);
    expect(await reader.redrive({ queue: "task_wakeup" })).toBe(1);
  });
});

/** A connection as `role`, and every permission error the server sent it. */
async function rawAs(
  role: Role,
): Promise<{ nc: NatsConnection; errors: PermissionViolationError[] }> {
  const nc = await connect({
    servers: `127.0.0.1:${server.port}`,
    user: NATS_USERS[role],
    pass: password(role),
    inboxPrefix: `_INBOX_${NATS_USERS[role]}`,
  });
  const errors: PermissionViolationError[] = [];
  void (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) {
      if (s.type === "error" && s.error instanceof PermissionViolationError) errors.push(s.error);
    }
  })();
  return { nc, errors };
}

describe("the worker's broker user", () => {
  let worker: { nc: NatsConnection; errors: PermissionViolationError[] };
  beforeAll(async () => {
    worker = await rawAs("worker");
  });
  afterAll(async () => {
    await worker.nc.close();
  });

  const refusedPublish = async (subject: string, body = "{}") => {
    const before = worker.errors.length;
    const err = await worker.nc.request(subject, body, { timeout: 3_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    await waitFor(
      () =>
        worker.errors.slice(before).some((e) => e.operation === "publish" && e.subject === subject),
      { what: `the server refusing a publish to ${subject}` },
    );
  };

  const refusedSubscribe = async (subject: string) => {
    const before = worker.errors.length;
    const sub = worker.nc.subscribe(subject);
    await waitFor(
      () =>
        worker.errors
          .slice(before)
          .some((e) => e.operation === "subscription" && e.subject === subject),
      { what: `the server refusing a subscription to ${subject}` },
    );
    sub.unsubscribe();
  };

  const wake = names.of("task_wakeup");
  const buf = names.of("buffer_queue");
  const done = names.of("task_completed");

  test("may not publish to any other queue, nor delay its own", async () => {
    const js = jetstream(worker.nc, { timeout: 3_000 });
    for (const subject of [buf.ready, buf.delayed, done.ready, wake.delayed]) {
      const err = await js.publish(subject, JSON.stringify(buffer().payload)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
    }
    await refusedPublish(buf.ready);
  });

  test("may not consume, ack, read or delete another queue's messages", async () => {
    await refusedPublish(
      `$JS.API.CONSUMER.MSG.NEXT.${buf.stream}.${buf.consumer}`,
      '{"batch":1,"no_wait":true}',
    );
    await refusedPublish(`$JS.API.CONSUMER.INFO.${buf.stream}.${buf.consumer}`);
    await refusedPublish(`$JS.ACK.${buf.stream}.${buf.consumer}.1.1.1.1.0`, "+ACK");
    await refusedPublish(`$JS.API.STREAM.MSG.GET.${buf.stream}`, '{"seq":1}');
    await refusedPublish(`$JS.API.STREAM.MSG.DELETE.${buf.stream}`, '{"seq":1}');
    await refusedPublish(buf.error("1"), "forged error");
    await refusedPublish(`$JS.API.STREAM.PURGE.${buf.errorStream}`);
  });

  test("may not read or delete dead letters, its own queue's included", async () => {
    for (const q of [wake, buf]) {
      await refusedPublish(`$JS.API.STREAM.MSG.GET.${q.dlqStream}`, '{"seq":1}');
      await refusedPublish(`$JS.API.STREAM.INFO.${q.dlqStream}`);
      await refusedPublish(`$JS.API.STREAM.MSG.DELETE.${q.dlqStream}`, '{"seq":1}');
    }
    await refusedPublish(buf.dlq("1"));
  });

  test("may not create, change, purge or delete streams and consumers, nor list them", async () => {
    await refusedPublish(
      "$JS.API.STREAM.CREATE.mine",
      JSON.stringify({ name: "mine", subjects: ["mine"] }),
    );
    await refusedPublish(`$JS.API.STREAM.UPDATE.${wake.stream}`);
    await refusedPublish(`$JS.API.STREAM.DELETE.${wake.stream}`);
    await refusedPublish(`$JS.API.STREAM.PURGE.${wake.stream}`);
    await refusedPublish(`$JS.API.STREAM.DELETE.${buf.stream}`);
    // Its own consumer: no second consumer to read the queue another way, no edit, no delete.
    await refusedPublish(`$JS.API.CONSUMER.CREATE.${wake.stream}`);
    await refusedPublish(`$JS.API.CONSUMER.DURABLE.CREATE.${wake.stream}.mine`);
    await refusedPublish(`$JS.API.CONSUMER.CREATE.${wake.stream}.${wake.consumer}.${wake.ready}`);
    await refusedPublish(`$JS.API.CONSUMER.DELETE.${wake.stream}.${wake.consumer}`);
    await refusedPublish("$JS.API.INFO");
    await refusedPublish("$JS.API.STREAM.NAMES");
    await refusedPublish("$JS.API.STREAM.LIST");
  });

  test("may not listen to other queues or to other users' replies", async () => {
    await refusedSubscribe(buf.ready);
    await refusedSubscribe(done.ready);
    await refusedSubscribe("_INBOX.>");
    await refusedSubscribe(`_INBOX_${NATS_USERS.dispatcher}.>`);
    await refusedSubscribe(`_INBOX_${NATS_USERS.sink}.>`);
    await refusedSubscribe("$JS.ACK.>");
    await refusedSubscribe(">");
  });
});
