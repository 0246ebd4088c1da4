import { afterAll, expect, test } from "bun:test";
import * as v from "valibot";
import { FIXTURE, program, removeTempDirs, TASK, tempStore } from "./helpers";

afterAll(removeTempDirs);

/**
 * A program printing far more than the worker could hold: its output is
 * streamed into the store, so the worker's peak RSS (VmHWM of the real
 * process, from /proc) stays far below the output's size. 10 million lines:
 * `bun bench/exec-rss.ts` (about 80 s here, too slow for the suite).
 */

const LINES = 300_000;
const title = "x".repeat(800);
const PRINTER = program(
  "prints-a-lot",
  `yes '{"source":"rss","severity":"low","title":"${title}","occurred_at":"2024-01-01T00:00:00Z"}' | head -n "$1"`,
);

const Result = v.object({
  outcome: v.object({
    kind: v.literal("succeeded"),
    lines: v.number(),
    batches: v.array(v.object({ size: v.number() })),
  }),
  vmhwm_kb: v.number(),
});

test(`${LINES} lines of ~900 bytes: streamed to the store with bounded worker RSS`, async () => {
  const s = await tempStore();
  const input = {
    command: [PRINTER, String(LINES)],
    storeUrl: s.url,
    taskTimeoutMs: 300_000,
    graceMs: 500,
    maxBatchBytes: 64 * 1024 * 1024,
    maxBatches: 16,
    task: { task_id: TASK.task_id, org_id: TASK.org_id, attempt: 1 },
  };
  const p = Bun.spawn([process.execPath, FIXTURE, JSON.stringify(input)], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const out = await new Response(p.stdout).text();
  expect(await p.exited).toBe(0);
  const r = v.parse(Result, JSON.parse(out));
  const outputMiB = r.outcome.batches.reduce((n, b) => n + b.size, 0) / 1024 / 1024;
  const peakMiB = r.vmhwm_kb / 1024;
  expect(r.outcome.lines).toBe(LINES);
  expect(outputMiB).toBeGreaterThan(250);
  expect(peakMiB).toBeLessThan(160);
}, 120_000);
