import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dedupeKey } from "../../../src/worker/alerts";
import { CHILD_STDERR } from "../../../src/worker/exec/child";
import { waitFor } from "../../support/wait";
import {
  alivePids,
  descendants,
  LINE,
  program,
  removeTempDirs,
  run,
  TASK,
  type TestStore,
  tempStore,
} from "./helpers";

afterAll(removeTempDirs);

/**
 * One attempt of a real task program, in this process: what it prints
 * becomes batch lines in the object store only when it exits 0 with every
 * line good; every other end keeps nothing, and leaves no process behind.
 */

function batchLines(s: TestStore): Array<Record<string, unknown>> {
  return s
    .files()
    .sort()
    .flatMap((f) =>
      readFileSync(join(s.dir, f), "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l)),
    );
}

/** The program and everything it started are gone (zombies count as gone). */
const aliveBelow = () => {
  const all = descendants(process.pid);
  const pids = new Set(alivePids(all));
  return all.filter((p) => pids.has(p.pid));
};
const key = (p: { pid: number; start: number }) => `${p.pid}@${p.start}`;
/**
 * What ran below this process before the test (the suite's own embedded
 * PostgreSQL, when no TEST_DATABASE_URL is given): not the test's leftovers.
 */
let before = new Set<string>();
beforeEach(() => {
  before = new Set(aliveBelow().map(key));
});

async function noneLeft(): Promise<void> {
  const left = () =>
    aliveBelow()
      .filter((p) => !before.has(key(p)))
      .map((p) => `${p.comm}[${p.pid}←${p.ppid}]`);
  await waitFor(
    () => {
      const now = left();
      if (now.length === 0) return true;
      throw new Error(`left: ${now.join(", ")}`);
    },
    { what: "no process left below the test", timeoutMs: 10_000 },
  );
}

describe("a program that exits 0", () => {
  test("its lines get the task's org and dedupe keys from task id and index, in the store", async () => {
    const s = await tempStore();
    const cmd = program(
      "three-lines",
      `read payload
cd "$HOME" || exit 9
printf '{"source":"t","severity":"low","title":"%s","occurred_at":"2024-01-01T00:00:00Z","attributes":%s}\\n' "$(pwd)" "$payload"
echo '{"org_id":"acme","source":"t","severity":"high","title":"own org","occurred_at":"2024-01-01T00:00:01Z"}'
echo '{"dedupe_key":"mine","source":"t","severity":"info","title":"own key","occurred_at":"2024-01-01T00:00:02Z"}'`,
    );
    const { outcome } = await run([cmd], { store: s });
    expect(outcome).toMatchObject({ kind: "succeeded", lines: 3 });
    if (outcome.kind !== "succeeded") return;
    expect(outcome.batches).toHaveLength(1);
    const lines = batchLines(s);
    expect(lines.map((l) => l.dedupe_key)).toEqual([
      dedupeKey(TASK.task_id, 0),
      dedupeKey(TASK.task_id, 1),
      "mine",
    ]);
    expect(lines.map((l) => l.org_id)).toEqual(["acme", "acme", "acme"]);
    expect(lines[0]?.attributes).toEqual({ hello: "world" });
    const home = String(lines[0]?.title);
    expect(home).toContain("harness-exec-");
    expect(existsSync(home)).toBe(false);
    expect(outcome.batches[0]?.uri).toStartWith(`${s.url}/acme/${TASK.task_id}/1-`);
  });

  test("the dedupe keys of two attempts are the same", async () => {
    const s = await tempStore();
    const cmd = program("one-line", `echo '${LINE}'`);
    await run([cmd], { store: s, task: { attempt: 1 } });
    await run([cmd], { store: s, task: { attempt: 2 } });
    const keys = batchLines(s).map((l) => l.dedupe_key);
    expect(keys).toEqual([dedupeKey(TASK.task_id, 0), dedupeKey(TASK.task_id, 0)]);
  });

  test("no output: succeeded with no batch", async () => {
    const s = await tempStore();
    const { outcome } = await run([program("silent", "exit 0")], { store: s });
    expect(outcome).toEqual({ kind: "succeeded", batches: [], lines: 0 });
    expect(s.files()).toEqual([]);
  });

  test("a long output is split into batches no larger than the batch limit", async () => {
    const s = await tempStore();
    const cmd = program("many", `i=0; while [ $i -lt 50 ]; do echo '${LINE}'; i=$((i+1)); done`);
    const { outcome } = await run([cmd], { store: s, deps: { maxBatchBytes: 1000 } });
    expect(outcome.kind).toBe("succeeded");
    if (outcome.kind !== "succeeded") return;
    expect(outcome.batches.length).toBeGreaterThan(5);
    for (const b of outcome.batches) expect(b.size).toBeLessThanOrEqual(1000);
    expect(outcome.lines).toBe(50);
    const keys = new Set(batchLines(s).map((l) => l.dedupe_key));
    expect(keys).toEqual(new Set(Array.from({ length: 50 }, (_, i) => dedupeKey(TASK.task_id, i))));
  });

  test("a 64 KiB payload reaches a program that never reads it without blocking anything", async () => {
    const s = await tempStore();
    const payload = { blob: "x".repeat(64 * 1024 - 20) };
    const cmd = program("ignores-stdin", `echo '${LINE}'`);
    const { outcome } = await run([cmd], { store: s, task: { payload } });
    expect(outcome).toMatchObject({ kind: "succeeded", lines: 1 });
  });

  test("what it writes on stderr goes to the log, with task_id and attempt", async () => {
    const s = await tempStore();
    const { log } = await run([program("talks", "echo 'working on it' >&2")], { store: s });
    const line = log.lines.find((l) => l.msg === CHILD_STDERR);
    expect(line?.fields).toMatchObject({
      line: "working on it",
      task_id: TASK.task_id,
      attempt: 1,
    });
  });
});

describe("a program that fails", () => {
  test("a non-zero exit fails the attempt (retryable) with its code and last stderr line, keeping nothing", async () => {
    const s = await tempStore();
    const cmd = program(
      "exit-3",
      `echo '${LINE}'; echo '${LINE}'; echo 'disk on fire' >&2; exit 3`,
    );
    const { outcome } = await run([cmd], { store: s });
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    if (outcome.kind !== "failed") return;
    expect(outcome.reason).toContain("code 3");
    expect(outcome.reason).toContain("disk on fire");
    expect(s.files()).toEqual([]);
  });

  test("one bad line fails the attempt naming the line, not retryable, with zero output kept", async () => {
    const s = await tempStore();
    // Lines 1–20 fill several finished batches first; line 21 has no title; then it would go on for ever.
    const cmd = program(
      "bad-line-21",
      `i=0; while [ $i -lt 20 ]; do echo '${LINE}'; i=$((i+1)); done
echo '{"source":"t","severity":"low","occurred_at":"2024-01-01T00:00:00Z"}'
while :; do echo '${LINE}'; sleep 0.01; done`,
    );
    const started = Date.now();
    const { outcome } = await run([cmd], {
      store: s,
      deps: { maxBatchBytes: 500 },
      settings: { taskTimeoutMs: 30_000 },
    });
    expect(outcome).toMatchObject({ kind: "failed", retryable: false });
    if (outcome.kind !== "failed") return;
    expect(outcome.reason).toStartWith("line 21 breaks the AlertLine contract");
    expect(outcome.reason).toContain("title");
    expect(s.files()).toEqual([]);
    expect(Date.now() - started).toBeLessThan(15_000);
    await noneLeft();
  });

  test("a line of another org fails the attempt", async () => {
    const s = await tempStore();
    const cmd = program(
      "other-org",
      `echo '{"org_id":"globex","source":"t","severity":"low","title":"x","occurred_at":"2024-01-01T00:00:00Z"}'`,
    );
    const { outcome } = await run([cmd], { store: s });
    expect(outcome).toMatchObject({ kind: "failed", retryable: false });
    if (outcome.kind === "failed")
      expect(outcome.reason).toContain('line 1 claims org_id "globex"');
    expect(s.files()).toEqual([]);
  });

  test("output past the batches one attempt may publish fails it, keeping nothing", async () => {
    const s = await tempStore();
    const cmd = program(
      "too-much",
      `i=0; while [ $i -lt 40 ]; do echo '${LINE}'; i=$((i+1)); done`,
    );
    const { outcome } = await run([cmd], {
      store: s,
      deps: { maxBatchBytes: 600, maxBatches: 2 },
    });
    expect(outcome).toMatchObject({ kind: "failed", retryable: false });
    if (outcome.kind === "failed") expect(outcome.reason).toContain("more than 2 batches");
    expect(s.files()).toEqual([]);
  });

  test("a program killed mid-run fails the attempt (retryable), keeping nothing", async () => {
    const s = await tempStore();
    const cmd = program("killed", `echo '${LINE}'; exec sleep 1000`);
    const running = run([cmd], { store: s });
    const sleeper = await waitFor(
      () => descendants(process.pid).find((p) => p.comm === "sleep" && p.state !== "Z"),
      { what: "the program's sleep" },
    );
    process.kill(sleeper.pid, "SIGKILL");
    const { outcome } = await running;
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    if (outcome.kind === "failed") expect(outcome.reason).toContain("SIGKILL");
    expect(s.files()).toEqual([]);
    await noneLeft();
  });

  test("a program that runs past --task-timeout is stopped, and the attempt fails (retryable)", async () => {
    const s = await tempStore();
    const cmd = program("hangs", `echo '${LINE}'; sleep 1000 & wait`);
    const started = Date.now();
    const { outcome } = await run([cmd], { store: s, settings: { taskTimeoutMs: 800 } });
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    if (outcome.kind === "failed") expect(outcome.reason).toContain("--task-timeout (800 ms)");
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    expect(s.files()).toEqual([]);
    await noneLeft();
  });
});

describe("a program stopped by the worker (its lease lost)", () => {
  test("SIGTERM to its group, SIGKILL after --grace-ms; nothing it printed, before or after, is kept", async () => {
    const s = await tempStore();
    // Ignores SIGTERM and SIGPIPE: keeps printing until SIGKILL.
    const cmd = program("stubborn", `trap '' TERM PIPE; while :; do echo '${LINE}'; done`);
    const stop = new AbortController();
    const graceMs = 700;
    const running = run([cmd], { store: s, stop: stop.signal, settings: { graceMs } });
    // The batch is being written: its temporary file exists.
    await waitFor(() => s.files().length > 0, { what: "the batch being written" });
    const stoppedAt = Date.now();
    stop.abort();
    const { outcome } = await running;
    expect(outcome).toEqual({ kind: "stopped" });
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(graceMs);
    expect(s.files()).toEqual([]);
    await noneLeft();
  });

  test("a program that ends on SIGTERM is not waited on for the whole grace period", async () => {
    const s = await tempStore();
    const stop = new AbortController();
    const running = run([program("polite", `echo '${LINE}'; sleep 1000 & wait`)], {
      store: s,
      stop: stop.signal,
      settings: { graceMs: 10_000 },
    });
    await waitFor(() => descendants(process.pid).some((p) => p.comm === "sleep"), {
      what: "the program running",
    });
    const stoppedAt = Date.now();
    stop.abort();
    expect((await running).outcome).toEqual({ kind: "stopped" });
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    expect(s.files()).toEqual([]);
    await noneLeft();
  });
});
