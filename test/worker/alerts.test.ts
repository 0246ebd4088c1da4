import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import * as v from "valibot";
import { AlertLine } from "../../src/contracts/alert";
import { alertsFor, dedupeKey, generatedAlert, toJsonl } from "../../src/worker/alerts";
import { batchKey, heartbeatInterval } from "../../src/worker/attempt";
import { backoffDelay } from "../../src/worker/backoff";

describe("batch generation", () => {
  const taskId = randomUUID();

  test("N deterministic alerts: valid lines, keys from task id and index only", () => {
    const lines = alertsFor("acme", taskId, { alerts: 7 });
    expect(lines).toHaveLength(7);
    for (const line of lines) expect(v.is(AlertLine, line)).toBe(true);
    expect(lines.map((l) => l.dedupe_key)).toEqual(
      Array.from({ length: 7 }, (_, i) => `${taskId}:${i}`),
    );
    expect(new Set(lines.map((l) => l.org_id))).toEqual(new Set(["acme"]));
    // Same input, same bytes: whatever the attempt or the moment.
    expect(toJsonl(alertsFor("acme", taskId, { alerts: 7, work_ms: 5 }))).toEqual(toJsonl(lines));
    expect([generatedAlert("acme", taskId, 3)]).toEqual(lines.slice(3, 4));
  });

  test("zero alerts make an empty batch", () => {
    expect(alertsFor("acme", taskId, { alerts: 0 })).toEqual([]);
    expect(toJsonl([]).byteLength).toBe(0);
  });

  test("explicit alerts keep their key or get task id + index; org comes from the task", () => {
    const lines = alertsFor("acme", taskId, {
      alerts: [
        {
          dedupe_key: "mine",
          source: "s",
          severity: "high",
          title: "t",
          occurred_at: "2024-05-01T00:00:00Z",
        },
        {
          source: "s2",
          severity: "low",
          title: "u",
          occurred_at: "2024-05-01T00:00:01+02:00",
          attributes: { a: 1 },
        },
      ],
    });
    expect(lines.map((l) => l.dedupe_key)).toEqual(["mine", dedupeKey(taskId, 1)]);
    expect(lines[1]).toEqual({
      dedupe_key: dedupeKey(taskId, 1),
      org_id: "acme",
      source: "s2",
      severity: "low",
      title: "u",
      occurred_at: "2024-05-01T00:00:01+02:00",
      attributes: { a: 1 },
    });
    expect(lines[0]).not.toHaveProperty("attributes");
  });

  test("JSONL: one JSON object per line, each ending in a newline, UTF-8", () => {
    const lines = alertsFor("acme", taskId, { alerts: 3 });
    const text = new TextDecoder().decode(toJsonl(lines));
    expect(text.endsWith("\n")).toBe(true);
    expect(
      text
        .slice(0, -1)
        .split("\n")
        .map((l) => JSON.parse(l)),
    ).toEqual(lines);
  });

  test("batch keys are <org>/<task>/<attempt>-<unique>.jsonl and never repeat", () => {
    const a = batchKey({ org_id: "acme", task_id: taskId, attempt: 3 });
    const b = batchKey({ org_id: "acme", task_id: taskId, attempt: 3 });
    expect(a).toMatch(new RegExp(`^acme/${taskId}/3-[0-9a-f-]{36}\\.jsonl$`));
    expect(a).not.toBe(b);
  });
});

describe("timing", () => {
  test("backoff doubles from the base, is capped, and is jittered within [half, all]", () => {
    const policy = { baseMs: 100, capMs: 2_000 };
    expect(backoffDelay(policy, 0, () => 0)).toBe(50);
    expect(backoffDelay(policy, 0, () => 1)).toBe(100);
    expect(backoffDelay(policy, 3, () => 1)).toBe(800);
    expect(backoffDelay(policy, 10, () => 1)).toBe(2_000);
    expect(backoffDelay(policy, 1_000, () => 0.5)).toBe(1_500);
    for (let n = 0; n < 50; n++) {
      const d = backoffDelay(policy, n);
      expect(d).toBeGreaterThanOrEqual(Math.min(2_000, 100 * 2 ** n) / 2);
      expect(d).toBeLessThanOrEqual(2_000);
    }
  });

  test("heartbeats come every third of the lease", () => {
    expect(heartbeatInterval(30_000)).toBe(10_000);
    expect(heartbeatInterval(60)).toBe(50);
  });
});
