import { beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { BacklogResponse } from "../../src/contracts/http";
import { ConformanceChecker } from "../support/conformance";
import { useFreshDatabase } from "../support/db";
import { newTask } from "./_client";
import { INTERNAL, type InProcess, inProcess } from "./_inprocess";

/** GET /internal/backlog in-process: the internal token, the counts, the exported contract. */

const db = useFreshDatabase();
let api: InProcess;
let checker: ConformanceChecker;

beforeAll(async () => {
  api = await inProcess(db().sql);
  checker = await ConformanceChecker.load();
});

const get = (headers: Record<string, string> = { authorization: `Bearer ${INTERNAL}` }) =>
  Promise.resolve(api.app(new Request("http://dispatcher/internal/backlog", { headers })));

describe("GET /internal/backlog", () => {
  test("answers the pipeline's counts, in the exported backlog_response contract", async () => {
    const queued = await newTask(db().sql);
    await api.claim(await newTask(db().sql));
    await db().sql`UPDATE state.outbox SET status = 'sent' WHERE payload->>'task_id' = ${queued}`;
    const res = await get();
    expect(res.status).toBe(200);
    const body: unknown = await res.json();
    expect(v.parse(BacklogResponse, body)).toEqual({
      outbox_pending: 1,
      tasks_queued: 1,
      tasks_running: 1,
    });
    const where = "GET /internal/backlog → 200";
    expect(
      checker.checkHttpResponse({ method: "GET", path: "/internal/backlog", status: 200, body }),
    ).toBe(true);
    expect(checker.mismatches, where).toEqual([]);
  });

  test("without the internal token → 401 unauthorized, in the error_body contract", async () => {
    const without: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token-0123456789" },
    ];
    for (const headers of without) {
      const res = await get(headers);
      expect(res.status).toBe(401);
      const body: unknown = await res.json();
      expect(body).toMatchObject({ error: "unauthorized" });
      expect(
        checker.checkHttpResponse({ method: "GET", path: "/internal/backlog", status: 401, body }),
      ).toBe(true);
    }
  });

  test("another method → 405 with Allow", async () => {
    const res = await api.post("/internal/backlog", {});
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
  });
});
