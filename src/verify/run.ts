import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as v from "valibot";
import type { Config } from "../config";
import { BufferMessage } from "../contracts/queue";
import { connect, type Sql } from "../db/connect";
import { createLogger } from "../log";
import { freePort } from "../platform/embedded";
import { type RoleProcess, Supervisor } from "../platform/supervisor";
import { openQueue } from "../queue/open";
import type { QueueBackend } from "../queue/seam";
import { sleep } from "../sleep";
import { createTasks } from "../tasks/create";
import { auditProgress, auditSentBufferPayloads } from "./audit";
import { type ChaosEvent, chaosSchedule, describeEvent } from "./chaos";
import { type CheckReport, checkInvariants } from "./checker";
import { claimDatabase } from "./exclusive";

/**
 * `harness verify`: seeds K tasks of N alerts under a fresh org, runs two
 * dispatchers, W workers and a sink as child processes (restarted when they
 * die), optionally applies a seeded fault schedule, waits until quiet, and
 * checks every invariant from the databases.
 */

const log = createLogger("verify");

/** Log messages tests wait for. */
export const VERIFY_LOG = { tasksCreated: "tasks created" } as const;

export interface VerifyOptions {
  tasks: number;
  alerts: number;
  /** Each task works at least this long (heartbeating), so faults land mid-task. */
  workMs: number;
  workers: number;
  /** `--exec CMD [ARGS…]`: the workers run this task program for every attempt. */
  exec?: string[] | undefined;
  chaos: number | undefined;
  timeoutMs: number;
  logDir: string | undefined;
}

export interface VerifyReport {
  orgId: string;
  seed: number | null;
  schedule: string[];
  injected: { kills: number; duplicateWakeups: number; duplicateBuffers: number };
  restarts: Record<string, number>;
  elapsedMs: number;
  timedOut: boolean;
  check: CheckReport;
}

interface Pipeline {
  state: Sql;
  data: Sql;
  /** Publishes the duplicates the chaos schedule injects. */
  queue: QueueBackend;
  supervisor: Supervisor;
  roles: Map<string, RoleProcess>;
}

async function waitReady(url: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`dispatcher at ${url} not ready in time`);
}

const execArgs = (o: VerifyOptions): string[] =>
  o.exec === undefined ? [] : ["--exec", ...o.exec.slice(0, 1), "--", ...o.exec.slice(1)];

async function startRoles(
  cfg: Config,
  urls: { state: string; data: string },
  o: VerifyOptions,
  logDir: string,
) {
  const supervisor = new Supervisor(logDir);
  const roles = new Map<string, RoleProcess>();
  const base = {
    STATE_DATABASE_URL: urls.state,
    DATA_DATABASE_URL: urls.data,
    DATABASE_URL: undefined,
    OBJECT_STORE_URL: cfg.objectStoreUrl ?? pathToFileURL(join(logDir, "objects")).href,
    INTERNAL_AUTH_TOKEN: cfg.internalAuthToken ?? crypto.randomUUID(),
    LEASE_DURATION_MS: process.env.LEASE_DURATION_MS ?? "2000",
    VISIBILITY_TIMEOUT_MS: process.env.VISIBILITY_TIMEOUT_MS ?? "2000",
    MAX_ATTEMPTS: process.env.MAX_ATTEMPTS ?? "10",
    MAX_RECEIVES: process.env.MAX_RECEIVES ?? "50",
  };
  const dispatcherUrls: string[] = [];
  for (const name of ["dispatcher-1", "dispatcher-2"]) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    dispatcherUrls.push(url);
    roles.set(
      name,
      supervisor.start({
        name,
        args: ["dispatcher"],
        env: { ...base, PORT: String(port) },
        restart: true,
      }),
    );
  }
  const deadline = Date.now() + 30_000;
  for (const url of dispatcherUrls) await waitReady(url, deadline);
  for (let i = 1; i <= o.workers; i++) {
    const env = { ...base, DISPATCHER_URL: dispatcherUrls[i % dispatcherUrls.length] };
    const name = `worker-${i}`;
    roles.set(
      name,
      supervisor.start({
        name,
        args: ["worker", "--concurrency", "8", ...execArgs(o)],
        env,
        restart: true,
      }),
    );
  }
  roles.set(
    "sink",
    supervisor.start({
      name: "sink",
      args: ["sink", "--concurrency", "4"],
      env: base,
      restart: true,
    }),
  );
  return { supervisor, roles };
}

async function applyEvent(
  p: Pipeline,
  e: ChaosEvent,
  ids: readonly string[],
  injected: VerifyReport["injected"],
) {
  log.info("chaos", { event: describeEvent(e) });
  if (e.kind === "kill") {
    p.roles.get(e.role)?.signal("SIGKILL");
    injected.kills++;
  } else if (e.kind === "duplicate_wakeups") {
    const payloads = e.taskIndexes.flatMap((i) => {
      const id = ids[i % ids.length];
      return id === undefined ? [] : [{ task_id: id }];
    });
    await p.queue.publisher().publish(
      "task_wakeup",
      payloads.map((payload) => ({ payload })),
    );
    injected.duplicateWakeups += payloads.length;
  } else {
    const sent = await auditSentBufferPayloads(p.state, { taskIds: ids });
    const chosen = sent[e.pick % Math.max(1, sent.length)];
    const parsed = v.safeParse(BufferMessage, chosen);
    if (!parsed.success) return;
    await p.queue.publisher().publish("buffer_queue", [{ payload: parsed.output }]);
    injected.duplicateBuffers++;
  }
}

/** Applies each event of the schedule at its time. */
async function playSchedule(
  p: Pipeline,
  schedule: readonly ChaosEvent[],
  ids: readonly string[],
  injected: VerifyReport["injected"],
): Promise<void> {
  const t0 = Date.now();
  for (const event of schedule) {
    await sleep(t0 + event.atMs - Date.now());
    await applyEvent(p, event, ids, injected);
  }
}

/** Waits until every task finished and nothing is pending for half a second; false at the deadline. */
async function waitQuiet(
  state: Sql,
  orgId: string,
  ids: readonly string[],
  deadline: number,
): Promise<boolean> {
  let quietSince: number | undefined;
  for (;;) {
    const progress = await auditProgress(state, { orgId, taskIds: ids });
    const quiet = progress.finished === ids.length && progress.pending === 0;
    quietSince = quiet ? (quietSince ?? Date.now()) : undefined;
    if (quietSince !== undefined && Date.now() - quietSince > 500) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

export async function runVerify(
  cfg: Config,
  urls: { state: string; data: string },
  o: VerifyOptions,
): Promise<VerifyReport> {
  const started = Date.now();
  const release = await claimDatabase(urls.state, {
    privateStore: cfg.objectStoreUrl === undefined,
  });
  try {
    return await runClaimed(cfg, urls, o, started);
  } finally {
    await release();
  }
}

async function runClaimed(
  cfg: Config,
  urls: { state: string; data: string },
  o: VerifyOptions,
  started: number,
): Promise<VerifyReport> {
  const orgId = `verify-${o.chaos ?? "calm"}-${started.toString(36)}`;
  const logDir = o.logDir ?? mkdtempSync(join(tmpdir(), "harness-verify-"));
  const state = connect(urls.state, { name: "verify", max: 4 });
  const data = connect(urls.data, { name: "verify", max: 2 });
  const queue = await openQueue({ ...cfg, stateDatabaseUrl: urls.state }, { name: "verify" });
  const { supervisor, roles } = await startRoles(cfg, urls, o, logDir);
  const pipeline: Pipeline = { state, data, queue, supervisor, roles };
  const schedule =
    o.chaos === undefined
      ? []
      : chaosSchedule({
          seed: o.chaos,
          roles: [...roles.keys()],
          tasks: o.tasks,
          windowMs: 6_000,
          events: 12,
        });
  const injected = { kills: 0, duplicateWakeups: 0, duplicateBuffers: 0 };
  let timedOut = false;
  let restarts: Record<string, number> = {};
  try {
    const ids = await createTasks(state, {
      orgId,
      payload: o.workMs > 0 ? { alerts: o.alerts, work_ms: o.workMs } : { alerts: o.alerts },
      count: o.tasks,
    });
    log.info(VERIFY_LOG.tasksCreated, {
      org_id: orgId,
      tasks: ids.length,
      alerts: o.alerts,
      log_dir: logDir,
    });
    await playSchedule(pipeline, schedule, ids, injected);
    timedOut = !(await waitQuiet(state, orgId, ids, started + o.timeoutMs));
    restarts = supervisor.crashes();
  } finally {
    await supervisor.stopAll();
    await queue.close();
  }
  const check = await checkInvariants(state, data, { orgId });
  await state.end();
  await data.end();
  return {
    orgId,
    seed: o.chaos ?? null,
    schedule: schedule.map(describeEvent),
    injected,
    restarts,
    elapsedMs: Date.now() - started,
    timedOut,
    check,
  };
}
