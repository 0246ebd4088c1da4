import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { dedupeKey } from "../../../src/worker/alerts";
import { removeTempDirs, run, TASK, type TestStore, tempStore } from "./helpers";

afterAll(removeTempDirs);

/** The task programs in examples/, each run as the wrapper runs it. */

const EXAMPLES = resolve(import.meta.dir, "../../../examples");

function lines(s: TestStore): Array<Record<string, unknown>> {
  return s.files().flatMap((f) =>
    readFileSync(join(s.dir, f), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l)),
  );
}

describe("examples/", () => {
  test("df-alerts.sh: one alert per filesystem at or over the threshold, keyed by mount point", async () => {
    const s = await tempStore();
    const { outcome } = await run([join(EXAMPLES, "df-alerts.sh")], {
      store: s,
      task: { payload: { threshold: 0 } },
    });
    expect(outcome.kind).toBe("succeeded");
    const alerts = lines(s);
    const root = alerts.find((a) => a.dedupe_key === `df:${TASK.task_id}:/`);
    expect(root).toMatchObject({ org_id: "acme", source: "df" });
    // Over 100%, nothing is full.
    const none = await tempStore();
    const quiet = await run([join(EXAMPLES, "df-alerts.sh")], {
      store: none,
      task: { payload: { threshold: 101 } },
    });
    expect(quiet.outcome).toEqual({ kind: "succeeded", batches: [], lines: 0 });
  });

  test("load_alerts.py: reads its payload, alerts for each host over the limit", async () => {
    const s = await tempStore();
    const payload = {
      max_load: 2,
      hosts: [
        { name: "db-1", load: 3.5 },
        { name: "db-2", load: 0.4 },
        { name: "web-1", load: 9 },
      ],
    };
    const { outcome } = await run([join(EXAMPLES, "load_alerts.py")], {
      store: s,
      task: { payload },
    });
    expect(outcome).toMatchObject({ kind: "succeeded", lines: 2 });
    expect(lines(s).map((a) => [a.severity, a.dedupe_key])).toEqual([
      ["high", `${TASK.task_id}:0`],
      ["critical", `${TASK.task_id}:1`],
    ]);
  });

  test("synthetic.sh: {alerts: N} gives N lines with the default worker's dedupe keys", async () => {
    const s = await tempStore();
    const { outcome } = await run([join(EXAMPLES, "synthetic.sh")], {
      store: s,
      task: { payload: { alerts: 70, work_ms: 50 } },
    });
    expect(outcome).toMatchObject({ kind: "succeeded", lines: 70 });
    const keys = lines(s).map((a) => a.dedupe_key);
    expect(keys).toEqual(Array.from({ length: 70 }, (_, i) => dedupeKey(TASK.task_id, i)));
  });

  test("flaky.sh: attempt 1 fails (retryable), attempt 2 succeeds", async () => {
    const s = await tempStore();
    const flaky = join(EXAMPLES, "flaky.sh");
    const first = await run([flaky], { store: s, task: { attempt: 1 } });
    expect(first.outcome).toMatchObject({ kind: "failed", retryable: true });
    if (first.outcome.kind === "failed")
      expect(first.outcome.reason).toContain("failing on purpose");
    expect(s.files()).toEqual([]);
    const second = await run([flaky], { store: s, task: { attempt: 2 } });
    expect(second.outcome).toMatchObject({ kind: "succeeded", lines: 1 });
  });
});
