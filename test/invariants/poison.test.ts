import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { BufferMessage } from "../../src/contracts/queue";
import { alertsFor } from "../../src/worker/alerts";
import { call, claim, drained, fence } from "../dispatcher/_client";
import { dispatcherOf, writeObject } from "./http";
import { TestPlatform } from "./platform";

/**
 * Scenario 5: poison batches → DLQ. Malformed batches, written into the
 * object store under their task's folder and published through the REAL
 * task API (claim, buffer-publish with the capability token, complete), go
 * through the real sink among normal tasks worked by real workers: each is
 * dead-lettered at once with a reason naming the line, none of its rows is
 * written, and every other task is unaffected.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 5000, visibilityMs: 2000 });
  await p.startDispatcher();
});
afterAll(async () => {
  await p.stop();
});

const ORG = "poison";
const ALERTS = 4;

/** The task's own valid lines (as a worker makes them), as JSONL text lines without "\n". */
function goodLines(taskId: string): string[] {
  return alertsFor(ORG, taskId, { alerts: ALERTS }).map((a) => JSON.stringify(a));
}

interface PoisonCase {
  what: string;
  /** The whole batch text, made from the task's valid lines. */
  batch: (lines: string[]) => string;
  /** The dead letter's reason must contain this (it names the line). */
  reason: string;
}

const cases: PoisonCase[] = [
  {
    what: "a bad severity on line 2",
    batch: (l) =>
      `${[l[0], l[1]?.replace(/"severity":"[a-z]+"/, '"severity":"apocalyptic"'), ...l.slice(2)].join("\n")}\n`,
    reason: "line 2: severity",
  },
  {
    what: "a truncated last line",
    batch: (l) => `${l.slice(0, -1).join("\n")}\n${(l.at(-1) ?? "").slice(0, 25)}`,
    reason: `line ${ALERTS}: truncated`,
  },
  {
    what: "another org's line 3",
    batch: (l) =>
      `${[l[0], l[1], l[2]?.replace(`"org_id":"${ORG}"`, '"org_id":"someone-else"'), ...l.slice(3)].join("\n")}\n`,
    // The reason names the rule, never the batch's bytes (the other org's name).
    reason: `line 3: org_id: not the task's org "${ORG}"`,
  },
];

describe("invariants: poison batch → DLQ", () => {
  test("malformed batches published through the real API are dead-lettered with the line named, zero rows from them, other tasks unaffected", async () => {
    const d = dispatcherOf(p);
    const poisonIds = await p.createTasks(ORG, cases.length, ALERTS);
    const normalIds = await p.createTasks(ORG, 20, ALERTS, 100);
    await drained(p.state.sql);

    // Each poison task: claimed, its bad batch written under its folder, published, completed.
    for (const [i, c] of cases.entries()) {
      const taskId = poisonIds[i];
      if (taskId === undefined) throw new Error("missing poison task");
      const claimed = await claim(d, taskId);
      const lines = goodLines(taskId);
      expect(lines[1]).toContain('"severity":');
      const text = c.batch(lines);
      expect(text, c.what).not.toBe(`${lines.join("\n")}\n`);
      const put = await writeObject(
        p,
        { orgId: ORG, taskId, name: `${claimed.attempt}-poison.jsonl` },
        text,
      );
      const published = await call(d, "buffer-publish", claimed.capability_token, {
        ...fence(claimed),
        batch_uri: put.uri,
        content_type: "application/x-ndjson",
        batch_size_bytes: put.size,
      });
      expect(published.status, c.what).toBe(202);
      const completed = await call(d, "complete", claimed.capability_token, fence(claimed));
      expect(completed.status, c.what).toBe(200);
    }

    for (let i = 0; i < 2; i++) p.startWorker(["--concurrency", "4"]);
    p.startSink(["--concurrency", "2"]);
    const all = [...poisonIds, ...normalIds];
    await p.waitQuiet(ORG, all, 60_000);

    // Each poison batch: one dead letter, received once, its reason naming the line.
    const dead = await p.queue.admin().listDeadLetters({ queues: ["buffer_queue"] });
    expect(dead.length).toBe(cases.length);
    for (const [i, c] of cases.entries()) {
      const letter = dead.find((d) => v.parse(BufferMessage, d.payload).task_id === poisonIds[i]);
      expect(letter, c.what).toBeDefined();
      expect(String(letter?.lastError), c.what).toContain(c.reason);
      expect(letter?.receiveCount, c.what).toBe(1);
    }
    // Zero rows and no committed batch from any of them.
    const [fromPoison] = await p.data.sql`
        SELECT (SELECT count(*)::int FROM data.alert_events WHERE task_id = ANY(${poisonIds}::uuid[])) AS rows,
               (SELECT count(*)::int FROM data.sink_batches WHERE task_id = ANY(${poisonIds}::uuid[])) AS batches`;
    expect(fromPoison).toEqual({ rows: 0, batches: 0 });

    // Every other task: succeeded in one attempt, every row exactly once.
    const report = await p.expectInvariants(ORG, { poisonTaskIds: poisonIds });
    expect(report.tasks.succeeded).toBe(all.length);
    expect(report.rows.expected).toBe(normalIds.length * ALERTS);
    expect(report.rows.found).toBe(normalIds.length * ALERTS);
    expect(report.deadLetters).toEqual({ "buffer_queue.dlq": cases.length });
    const [normal] = await p.data.sql`
        SELECT count(DISTINCT task_id)::int AS tasks FROM data.sink_batches
        WHERE task_id = ANY(${normalIds}::uuid[])`;
    expect(normal?.tasks).toBe(normalIds.length);
    // Not told about the poison, the checker sees its dead letters and missing rows: it is not vacuous.
    const strict = await p.check(ORG);
    expect(strict.invariants.filter((x) => !x.ok).map((x) => x.name)).toEqual([
      "exactly the expected rows, each once, with the task's org",
      "no dead letters except the injected poison",
    ]);
  }, 120_000);
});
