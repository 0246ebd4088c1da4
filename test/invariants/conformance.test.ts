import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { ClaimResponse } from "../../src/contracts/http";
import { auditProgress } from "../../src/reads/audit";
import { liveMessageCount } from "../../src/verify/queues";
import { alertsFor } from "../../src/worker/alerts";
import { fence, HEADER } from "../dispatcher/_client";
import {
  ConformanceChecker,
  type ConformanceProxy,
  conformanceProxy,
} from "../support/conformance";
import { runHarness } from "../support/processes";
import { publishPayloads } from "../support/queue";
import { waitFor } from "../support/wait";
import { writeObject } from "./http";
import { TestPlatform } from "./platform";

/**
 * Live conformance (issue 9): a whole pipeline run in which every HTTP
 * exchange between workers and the dispatcher passes through
 * `conformanceProxy` and is checked against the EXPORTED JSON Schemas by an
 * independent validator (Ajv), every queue message, outbox row and task
 * payload is checked during and after the run, every batch in the object
 * store line by line, and the dead letters as `harness dlq list --json`
 * shows them. Any mismatch fails the scenario.
 */

let p: TestPlatform;
let checker: ConformanceChecker;
let proxy: ConformanceProxy;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 1500, visibilityMs: 1000 });
  await p.startDispatcher();
  checker = await ConformanceChecker.load();
  proxy = conformanceProxy(checker, p.dispatcherUrl);
});
afterAll(async () => {
  await proxy?.stop();
  await p.stop();
});

const ORG = "conformance";

/** Every file under a folder, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** A task call through the proxy, as a worker makes it. */
function viaProxy(path: string, headers: Record<string, string>, body: unknown) {
  return fetch(`${proxy.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("invariants: live conformance to the exported contracts", () => {
  test("a full pipeline run through the conformance proxy: every exchange, message, outbox row, payload, batch line and dead letter conforms", async () => {
    const plain = await p.createTasks(ORG, 20, 10);
    const slow = await p.createTasks(ORG, 4, 5, 1200); // heartbeats on the wire
    const explicit = await runHarness(
      [
        "task",
        "create",
        "--org",
        ORG,
        "--payload",
        JSON.stringify({
          alerts: [
            {
              source: "edr",
              severity: "critical",
              title: "Ransomware — ünïcödé 🔥",
              occurred_at: "2025-06-01T12:00:00+02:00",
              attributes: { host: "db-1", tags: ["a", "b"], nested: { n: 1 } },
            },
            {
              dedupe_key: "explicit-key-1",
              source: "ids",
              severity: "low",
              title: "Port scan",
              occurred_at: "2025-06-01T10:00:00.123Z",
            },
          ],
        }),
      ],
      p.env,
    );
    expect(explicit.code, explicit.stderr).toBe(0);
    const explicitIds = explicit.stdout.trim().split("\n");
    const [poisonId] = await p.createTasks(ORG, 1, 3);
    if (poisonId === undefined) throw new Error("no poison task");
    const ids = [...plain, ...slow, ...explicitIds, poisonId];

    // One poison batch, published by hand through the proxy (claim, buffer-publish, complete).
    const claimRes = await viaProxy(
      "/internal/task-claim",
      { authorization: `Bearer ${p.env.INTERNAL_AUTH_TOKEN}` },
      { task_id: poisonId },
    );
    expect(claimRes.status).toBe(200);
    const claimed = v.parse(ClaimResponse, await claimRes.json());
    const lines = alertsFor(ORG, poisonId, { alerts: 3 }).map((a) => JSON.stringify(a));
    const put = await writeObject(
      p,
      { orgId: ORG, taskId: poisonId, name: `${claimed.attempt}-poison.jsonl` },
      `${lines[0]}\n${lines[1]?.replace('"source":', '"sauce":')}\n${lines[2]}\n`,
    );
    const cap = { [HEADER]: claimed.capability_token };
    const published = await viaProxy("/v1/task/buffer-publish", cap, {
      ...fence(claimed),
      batch_uri: put.uri,
      content_type: "application/x-ndjson",
      batch_size_bytes: put.size,
    });
    expect(published.status).toBe(202);
    expect((await viaProxy("/v1/task/complete", cap, fence(claimed))).status).toBe(200);

    // Duplicate wakeups, so refusals (409 error bodies) cross the proxy too.
    await publishPayloads(
      p.queue,
      "task_wakeup",
      plain.slice(0, 10).map((task_id) => ({ task_id })),
    );
    for (let i = 0; i < 2; i++)
      p.startWorker(["--concurrency", "4"], { DISPATCHER_URL: proxy.url });
    p.startSink(["--concurrency", "2"]);

    // Sample the queue tables while the pipeline runs, until it is quiet.
    let samples = 0;
    await waitFor(
      async () => {
        await checker.checkQueueTables(p.state.sql);
        samples++;
        const progress = await auditProgress(p.state.sql, { orgId: ORG, taskIds: ids });
        if (progress.finished !== ids.length || progress.pending !== 0) return false;
        return (await liveMessageCount(p.queue.admin())) === 0;
      },
      {
        what: "the pipeline to finish while sampling the queue tables",
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    expect(samples).toBeGreaterThan(1);
    await checker.checkQueueTables(p.state.sql);

    // Every batch in the object store, line by line (the poison one is checked apart: it must NOT conform).
    const batches = (await filesUnder(p.objectDir)).filter((f) => f.endsWith(".jsonl"));
    const poisonFiles = batches.filter((f) => f.includes(poisonId));
    expect(poisonFiles).toHaveLength(1);
    for (const file of batches.filter((f) => !f.includes(poisonId)))
      checker.checkJsonl(await readFile(file, "utf8"), file);
    expect(batches.length).toBeGreaterThanOrEqual(plain.length + slow.length + 1);
    const poisonCheck = await ConformanceChecker.load();
    expect(poisonCheck.checkJsonl(await readFile(poisonFiles[0] ?? "", "utf8"), "poison")).toBe(
      false,
    );
    expect(poisonCheck.mismatches.map((m) => m.where)).toEqual(["poison line 2"]);

    // The dead letters, as the CLI shows them.
    const dlq = await runHarness(["dlq", "list", "--json"], p.env);
    expect(dlq.code, dlq.stderr).toBe(0);
    const letters: unknown = JSON.parse(dlq.stdout);
    expect(Array.isArray(letters) && letters.length).toBe(1);
    if (Array.isArray(letters))
      for (const [i, letter] of letters.entries())
        checker.check("dead_letter_envelope", letter, `harness dlq list --json [${i}]`);

    checker.assertConforms();
    // Every contract that crosses a process boundary in this run was really exercised.
    for (const contract of [
      "claim_request",
      "claim_response",
      "capability_header",
      "capability_claims",
      "heartbeat_request",
      "heartbeat_response",
      "buffer_publish_request",
      "buffer_publish_response",
      "complete_request",
      "complete_response",
      "error_body",
      "task_wakeup",
      "buffer_queue",
      "task_completed",
      "task_payload",
      "alert_line",
      "dead_letter_envelope",
    ])
      expect(checker.checked.get(contract) ?? 0, contract).toBeGreaterThan(0);
    // At least a claim and a complete (carrying its batch) per task, and the slow tasks' heartbeats.
    expect(proxy.exchanges()).toBeGreaterThan(2 * ids.length);

    const report = await p.expectInvariants(ORG, { poisonTaskIds: [poisonId] });
    expect(report.rows.found).toBe(plain.length * 10 + slow.length * 5 + 2);
  }, 120_000);

  test("the proxy really checks live traffic: a malformed request to the real dispatcher is reported, its error answer conforms", async () => {
    const strict = await ConformanceChecker.load();
    const probe = conformanceProxy(strict, p.dispatcherUrl);
    try {
      const res = await fetch(`${probe.url}/v1/task/heartbeat`, {
        method: "POST",
        headers: { [HEADER]: "not.a.token", "content-type": "application/json" },
        body: JSON.stringify({ task_id: "x", attempt: 0, lease_token: 7, extra: true }),
      });
      expect(res.status).toBe(401);
      expect(probe.exchanges()).toBe(1);
      expect(strict.mismatches.map((m) => [m.where, m.contract])).toEqual([
        ["POST /v1/task/heartbeat request", "heartbeat_request"],
      ]);
      expect(strict.checked.get("error_body")).toBe(1);
      expect(() => strict.assertConforms()).toThrow("1 value(s) do not conform");
    } finally {
      await probe.stop();
    }
  });
});
