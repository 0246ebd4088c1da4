import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeError } from "../../describe-error";
import type { Logger } from "../../log";
import type { ObjectStore } from "../../objectstore/index";
import { sleep } from "../../sleep";
import { batchKey } from "../attempt";
import { type Batch, BatchWriter, TooMuchOutputError } from "./batches";
import { type Child, type ExitStatus, startChild } from "./child";
import { childEnv } from "./env";
import { describeExit } from "./exit";
import { homePrefix } from "./homes";
import { launchArgv, type RunAs } from "./launch";
import { readOutput } from "./output";
import type { ExecPlan } from "./setup";

/**
 * One attempt of a task program, start to end: a fresh working folder, the
 * program started (./child.ts), its stdout checked and streamed into the
 * object store as it comes (./output.ts, ./batches.ts), and an outcome. Only
 * a program that exited 0 with every line good yields batches; every other
 * end deletes what was written, so nothing of it can be published.
 */

export interface ExecTask {
  task_id: string;
  org_id: string;
  attempt: number;
  payload: unknown;
}

export type ExecOutcome =
  | { kind: "succeeded"; batches: Batch[]; lines: number }
  | { kind: "failed"; reason: string; retryable: boolean }
  /** The caller's signal stopped it (lease lost, worker abandoning): nothing kept. */
  | { kind: "stopped" };

export interface ExecDeps {
  store: ObjectStore;
  log: Logger;
  /** The largest batch buffer-publish accepts (MAX_BATCH_BYTES). */
  maxBatchBytes: number;
  /** Buffer-publishes one attempt may make (MAX_BATCHES_PER_ATTEMPT). */
  maxBatches: number;
}

/** Logged when a program starts and when it ended, with task_id and attempt. */
export const EXEC_STARTED = "task program started";
export const EXEC_ENDED = "task program ended";

const failed = (reason: string, retryable: boolean): ExecOutcome => ({
  kind: "failed",
  reason,
  retryable,
});

export async function runExec(
  plan: ExecPlan,
  task: ExecTask,
  deps: ExecDeps,
  stop: AbortSignal,
): Promise<ExecOutcome> {
  const log = deps.log.child({ task_id: task.task_id, attempt: task.attempt });
  if (stop.aborted) return { kind: "stopped" };
  const home = await makeHome(plan.launch.runAs);
  try {
    return await runIn(home, plan, task, { ...deps, log }, stop);
  } finally {
    await rm(home, { recursive: true, force: true }).catch((err: unknown) =>
      log.warn("could not remove the program's working folder", { err, home }),
    );
  }
}

/**
 * A fresh folder, HOME and working directory of one run, owned by whoever
 * runs the program. Its name carries the worker's pid, so a worker killed
 * with -9 leaves folders the next one can tell are stale (./homes.ts).
 */
async function makeHome(runAs: RunAs | undefined): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), homePrefix(process.pid)));
  if (runAs !== undefined) await chown(home, runAs.uid, runAs.gid);
  return home;
}

async function runIn(
  home: string,
  plan: ExecPlan,
  task: ExecTask,
  deps: ExecDeps,
  stop: AbortSignal,
): Promise<ExecOutcome> {
  const { log } = deps;
  const startedAt = performance.now();
  const child = startChild({
    argv: launchArgv(plan.launch, plan.command),
    cwd: home,
    env: childEnv(task, { path: plan.path, home, passed: plan.passed }),
    stdin: new TextEncoder().encode(`${JSON.stringify(task.payload)}\n`),
    log,
  });
  log.info(EXEC_STARTED, { pid: child.pid, fence: plan.launch.fence });
  const writer = new BatchWriter(deps.store, () => batchKey(task), deps);
  const run = new Run(child, plan.graceMs);
  const timer = setTimeout(
    () => run.halt(failed(`ran longer than --task-timeout (${plan.taskTimeoutMs} ms)`, true)),
    plan.taskTimeoutMs,
  );
  const onStop = () => run.halt({ kind: "stopped" });
  stop.addEventListener("abort", onStop, { once: true });
  if (stop.aborted) onStop();
  try {
    const lines = await run.output(writer, task);
    const status = await child.exited;
    await run.stderrRead();
    const ms = Math.round(performance.now() - startedAt);
    log.info(EXEC_ENDED, { code: status.code, signal: status.signal, lines, ms });
    return await settle(run, writer, status, stop);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
    await run.ended();
  }
}

/** The decision on a finished run: batches only for exit 0, every line good, nothing halted it. */
async function settle(
  run: Run,
  writer: BatchWriter,
  status: ExitStatus,
  stop: AbortSignal,
): Promise<ExecOutcome> {
  if (run.verdict === undefined && (status.code !== 0 || status.signal !== null)) {
    run.halt(failed(describeExit(status, run.child.stderrTail()), true));
  }
  if (run.verdict !== undefined) {
    await writer.abort();
    return run.verdict;
  }
  let batches: Batch[];
  try {
    batches = await writer.finish();
  } catch (err) {
    await writer.abort();
    return failed(`writing the batch failed: ${describeError(err)}`, true);
  }
  if (stop.aborted) {
    await writer.abort();
    return { kind: "stopped" };
  }
  return { kind: "succeeded", batches, lines: batches.reduce((n, b) => n + b.lines, 0) };
}

/** A run's verdict, set once by whatever ends it first; setting it stops the program. */
class Run {
  verdict: ExecOutcome | undefined;
  private readonly halted = new AbortController();
  private stopping: Promise<void> | undefined;

  constructor(
    readonly child: Child,
    private readonly graceMs: number,
  ) {}

  halt(outcome: ExecOutcome): void {
    if (this.verdict !== undefined) return;
    this.verdict = outcome;
    this.halted.abort();
    this.stopping = this.child.stop(this.graceMs);
  }

  /**
   * Reads stdout to its end, or until halted. Once the program exited, what
   * is left of its process group is killed, and its stdout gets the grace
   * period to reach its end (a process it started that escaped the group
   * could hold it open for ever).
   */
  async output(writer: BatchWriter, task: ExecTask): Promise<number | undefined> {
    const ctx = { taskId: task.task_id, orgId: task.org_id };
    const reading = readOutput(this.child.stdout, writer, ctx, this.halted.signal).then(
      (r) => {
        if ("bad" in r) this.halt(failed(r.bad, false));
        return "lines" in r ? r.lines : undefined;
      },
      (err: unknown) => {
        if (err instanceof TooMuchOutputError) this.halt(failed(err.message, false));
        else this.halt(failed(`writing the batch failed: ${describeError(err)}`, true));
        return undefined;
      },
    );
    void this.child.exited.then(async () => {
      this.child.killGroup();
      const done = new AbortController();
      void reading.then(() => done.abort());
      await sleep(this.graceMs, done.signal);
      if (!done.signal.aborted) {
        this.halt(failed("the program exited but a process it started kept its stdout open", true));
      }
    });
    return reading;
  }

  /** Waits until the program is gone, when it was stopped. */
  async ended(): Promise<void> {
    await this.stopping;
  }

  /** Waits (at most the grace period) for the rest of stderr: its last line may name the failure. */
  async stderrRead(): Promise<void> {
    const done = new AbortController();
    await Promise.race([this.child.stderrDone, sleep(this.graceMs, done.signal)]);
    done.abort();
  }
}
