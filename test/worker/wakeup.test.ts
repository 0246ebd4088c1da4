import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { GiveUp } from "../../src/give-up";
import { captureLogs, createLogger } from "../../src/log";
import { openObjectStore } from "../../src/objectstore/index";
import { DispatcherClient } from "../../src/worker/client";
import type { WorkerContext } from "../../src/worker/context";
import { handleWakeup } from "../../src/worker/task";
import { useFreshDatabase } from "../support/db";
import { publishPayloads } from "../support/queue";
import { tempStoreUrl } from "./helpers";

/**
 * How one wakeup reacts to claim answers the real dispatcher cannot be made
 * to give on purpose (a payload breaking its contract, a persistent 500),
 * against a scripted in-process server and a real queue.
 */

// Every test here provokes an error on purpose: its log lines are kept and looked at, not printed.
const logs = captureLogs();
afterAll(logs.restore);
const db = useFreshDatabase();
let answer: (req: Request) => Response | Promise<Response> = () =>
  new Response(null, { status: 500 });
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => answer(req) });
afterAll(() => server.stop(true));

async function context(): Promise<WorkerContext> {
  const log = createLogger("worker-test");
  const dir = tempStoreUrl();
  const noS3 = {
    endpoint: undefined,
    accessKeyId: undefined,
    secretAccessKey: undefined,
    region: undefined,
  };
  return {
    queue: await wakeups(),
    store: await openObjectStore(dir, noS3),
    client: new DispatcherClient({
      baseUrl: `http://127.0.0.1:${server.port}`,
      internalToken: "internal-token-0123456789",
      log,
      backoff: { baseMs: 1, capMs: 5 },
    }),
    leaseDurationMs: 1_000,
    log,
    queueAt: { name: "the state database", where: db().name },
    giveUp: new GiveUp(undefined),
  };
}

const wakeups = () =>
  db().queue().consumer("task_wakeup", { visibilityTimeoutMs: 60_000, maxReceives: 5 });

async function oneWakeup(taskId: string) {
  await publishPayloads(db().queue(), "task_wakeup", [{ task_id: taskId }]);
  const [msg] = await (await wakeups()).receive(1);
  if (msg === undefined) throw new Error("no wakeup received");
  return msg;
}

/** A wakeup whose claim the current `answer` refuses: the handler says so; its row afterwards. */
async function refusedWakeup() {
  const msg = await oneWakeup(randomUUID());
  const result = await handleWakeup(
    await context(),
    { msg, hiddenUntil: 0 },
    new AbortController().signal,
  );
  expect(result).toEqual({ outcome: "refused" });
  const [row] = await db()
    .sql`SELECT queue_name, last_error FROM state.queue_messages WHERE id = ${msg.id}`;
  return row;
}

beforeEach(async () => {
  await db().sql`DELETE FROM state.queue_messages`;
  logs.lines.length = 0;
});

const errorsLogged = () => logs.lines.filter((l) => l.level === "error");

describe("a wakeup whose claim cannot be worked", () => {
  test("a payload the default worker cannot work fails the attempt, not retryable, with the reason; the wakeup is acked", async () => {
    const taskId = randomUUID();
    const failed: unknown[] = [];
    answer = async (req) => {
      if (new URL(req.url).pathname === "/v1/task/fail") {
        failed.push(await req.json());
        return Response.json({ task_id: taskId, attempt: 1, status: "failed", retry_at: null });
      }
      return Response.json({
        task_id: taskId,
        org_id: "acme",
        attempt: 1,
        lease_token: randomUUID(),
        lease_expires_at: new Date(Date.now() + 1000).toISOString(),
        capability_token: "cap",
        payload: { hosts: ["db-1"] },
      });
    };
    const msg = await oneWakeup(taskId);
    const result = await handleWakeup(
      await context(),
      { msg, hiddenUntil: 0 },
      new AbortController().signal,
    );
    expect(result).toMatchObject({ outcome: "failed", attempt: 1 });
    expect(failed).toEqual([
      expect.objectContaining({
        task_id: taskId,
        attempt: 1,
        retryable: false,
        reason: expect.stringContaining("payload breaks the SyntheticPayload contract"),
      }),
    ]);
    const [left] = await db().sql`SELECT count(*)::int AS n FROM state.queue_messages`;
    expect(left?.n).toBe(0);
    expect(errorsLogged()).toEqual([expect.objectContaining({ attempt: 1, retryable: false })]);
  });

  test("a persistent 500 on claim leaves the wakeup with the error noted", async () => {
    answer = () => Response.json({ error: "internal", message: "internal error" }, { status: 500 });
    const row = await refusedWakeup();
    expect(row?.queue_name).toBe("task_wakeup");
    expect(String(row?.last_error)).toContain("claim refused: 500 internal");
    expect(errorsLogged()).toEqual([expect.objectContaining({ status: 500, code: "internal" })]);
  });

  test("a 401 on claim (a wrong INTERNAL_AUTH_TOKEN) leaves the wakeup with the error noted", async () => {
    answer = () => Response.json({ error: "unauthorized", message: "bad token" }, { status: 401 });
    const row = await refusedWakeup();
    expect(String(row?.last_error)).toContain("401 unauthorized");
    expect(errorsLogged()).toEqual([
      expect.objectContaining({ status: 401, code: "unauthorized" }),
    ]);
  });

  test("409 retry_pending hides the wakeup until the retry is due (Retry-After), error-free", async () => {
    answer = () =>
      Response.json(
        { error: "retry_pending", message: "the task's retry is due later" },
        { status: 409, headers: { "Retry-After": "7" } },
      );
    const msg = await oneWakeup(randomUUID());
    const result = await handleWakeup(
      await context(),
      { msg, hiddenUntil: 0 },
      new AbortController().signal,
    );
    expect(result).toEqual({ outcome: "retry_pending" });
    const [row] = await db().sql`
      SELECT queue_name, last_error, extract(epoch FROM available_at - now()) * 1000 AS hidden_ms
      FROM state.queue_messages WHERE id = ${msg.id}`;
    expect(row).toMatchObject({ queue_name: "task_wakeup", last_error: null });
    expect(Number(row?.hidden_ms)).toBeGreaterThan(5_000);
    expect(Number(row?.hidden_ms)).toBeLessThanOrEqual(7_000);
  });
});
