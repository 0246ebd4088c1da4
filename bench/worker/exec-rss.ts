/**
 * `harness worker --exec` with a program printing 10 million alert lines:
 * the worker side's peak RSS (VmHWM from /proc of the real process running
 * the attempt, test/worker/exec/fixtures/run-once.ts) against the size of
 * the output it streamed into a file store, and lines per second.
 *
 *   bun bench/worker/exec-rss.ts [--lines 10000000]
 *
 * The batches go to a temporary folder that is removed afterwards (about
 * 2 GB at 10M lines: 190 bytes a stored line). Batches are 64 MiB, as many as
 * it takes (MAX_BATCHES_PER_ATTEMPT would have to allow them in a real run).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { lines: { type: "string", default: "10000000" } } });
const LINES = Number(values.lines);
const FIXTURE = resolve(import.meta.dir, "../../test/worker/exec/fixtures/run-once.ts");
const LINE = `{"source":"bench","severity":"low","title":"line of a long output","occurred_at":"2024-01-01T00:00:00Z"}`;

const dir = mkdtempSync(join(tmpdir(), "harness-bench-exec-"));
try {
  const printer = join(dir, "print.sh");
  writeFileSync(printer, `#!/bin/sh\nyes '${LINE}' | head -n "$1"\n`);
  chmodSync(printer, 0o755);
  const input = {
    command: [printer, String(LINES)],
    storeUrl: pathToFileURL(join(dir, "store")).href,
    taskTimeoutMs: 3_600_000,
    graceMs: 1_000,
    maxBatchBytes: 64 * 1024 * 1024,
    maxBatches: 1_000,
    task: { task_id: "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f", org_id: "bench", attempt: 1 },
  };
  const started = performance.now();
  const p = Bun.spawn([process.execPath, FIXTURE, JSON.stringify(input)], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`the attempt's process failed: ${out}`);
  const seconds = (performance.now() - started) / 1000;
  const r = JSON.parse(out);
  if (r.outcome.kind !== "succeeded") throw new Error(`the attempt failed: ${out.slice(0, 500)}`);
  const bytes = r.outcome.batches.reduce((n: number, b: { size: number }) => n + b.size, 0);
  const mib = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
  process.stdout.write(
    `${JSON.stringify({
      lines: r.outcome.lines,
      batches: r.outcome.batches.length,
      output_mib: mib(bytes),
      peak_rss_mib: mib(r.vmhwm_kb * 1024),
      seconds: Math.round(seconds * 10) / 10,
      lines_per_second: Math.round(r.outcome.lines / seconds),
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
