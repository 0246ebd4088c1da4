import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../config";
import { migrateAll } from "../db/migrator";
import { createLogger } from "../log";
import type { ProcResources } from "../platform/procfs";
import type { RoleProcess } from "../platform/supervisor";
import { sleep } from "../sleep";
import { openVerifyBroker, type VerifyBroker } from "./broker";
import { type ChaosEvent, chaosSchedule, describeEvent, type FaultKind } from "./chaos";
import { type CheckReport, checkInvariants, type Invariant } from "./checker";
import { claimDatabase } from "./exclusive";
import { TaskFeed, waitQuiet } from "./feed";
import { type Injected, Injector, type PlayedEvent } from "./inject";
import { type Pipeline, sampleResources, startPipeline } from "./pipeline";
import { startVerifyPostgres, type VerifyPostgres } from "./postgres";

/**
 * `harness verify`: seeds K tasks of N alerts under a fresh org (or, for a
 * soak, keeps creating them at a steady rate), runs the pipeline
 * (./pipeline.ts), plays a seeded fault schedule on it (./inject.ts), waits
 * until quiet, and checks every invariant from the databases and the
 * queues. With `embedded` it brings its own PostgreSQL, which the schedule
 * may restart; on a broker (QUEUE_URL, or `natsCluster`: three nodes of its
 * own, which the schedule may kill) the run has a namespace of its own
 * (./broker.ts).
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
  /** The fault kinds the schedule draws from. */
  faults: readonly FaultKind[];
  embedded: boolean;
  /** The queues on three nats-server processes of verify's own (R3 streams). */
  natsCluster: boolean;
  /** A soak: create tasks at `rate` a second for this long, with faults throughout. */
  durationMs: number | undefined;
  rate: number;
  timeoutMs: number;
  logDir: string | undefined;
  /** A schedule to play instead of the seeded one (tests). */
  schedule?: readonly ChaosEvent[];
}

export interface VerifyReport {
  orgId: string;
  seed: number | null;
  faults: FaultKind[];
  embedded: boolean;
  /** Where the queues were: "pgqueue", or the broker and the run's namespace. */
  queues: string;
  /** What the workers ran: the `--exec` program and its arguments, or null for the synthetic work. */
  exec: string[] | null;
  durationMs: number | null;
  /** The schedule as planned: a function of the seed and the pipeline's shape. */
  schedule: string[];
  /** The same events as data: `--schedule FILE` replays them (or a part of them). */
  events: ChaosEvent[];
  /** The schedule as played: when each event really started, and what showed it took effect. */
  played: PlayedEvent[];
  injected: Injected;
  /** Unexpected exits (the supervisor restarted the role), by role. */
  restarts: Record<string, number>;
  /** Each role's pid, RSS and open fds when the run began and when it ended. */
  resources: Record<string, { start: ProcResources | null; end: ProcResources | null }>;
  tasksCreated: number;
  elapsedMs: number;
  timedOut: boolean;
  check: CheckReport;
}

export async function runVerify(
  cfg: Config,
  urls: { state: string; data: string } | undefined,
  o: VerifyOptions,
): Promise<VerifyReport> {
  const started = Date.now();
  const pg = o.embedded ? await startVerifyPostgres() : undefined;
  try {
    const dbs = pg === undefined ? urls : await migrated(pg);
    if (dbs === undefined) throw new Error("verify needs database URLs or --embedded");
    const release = await claimDatabase(dbs.state, {
      privateStore: cfg.objectStoreUrl === undefined,
    });
    try {
      const broker = await openVerifyBroker(cfg, { cluster: o.natsCluster, started });
      try {
        return await runClaimed(broker?.cfg ?? cfg, dbs, o, { started, pg, broker });
      } finally {
        await broker?.close();
      }
    } finally {
      await release().catch(() => {});
    }
  } finally {
    await pg?.stop();
  }
}

async function migrated(pg: VerifyPostgres): Promise<{ state: string; data: string }> {
  const urls = { state: pg.url(), data: pg.url() };
  await migrateAll(urls);
  return urls;
}

/**
 * The span faults and tasks are spread over: a soak's duration; for a
 * replayed schedule, up to its last event; else 8 s.
 */
const windowOf = (o: VerifyOptions) =>
  o.durationMs ??
  (o.schedule === undefined ? 8_000 : Math.max(1_000, ...o.schedule.map((e) => e.atMs)));

/** What a run has beside its pipeline: when it began, and the servers of its own. */
interface RunContext {
  started: number;
  pg: VerifyPostgres | undefined;
  broker: VerifyBroker | undefined;
}

function scheduleFor(o: VerifyOptions, p: Pipeline, run: RunContext): ChaosEvent[] {
  if (o.schedule !== undefined) return [...o.schedule];
  if (o.chaos === undefined) return [];
  const windowMs = windowOf(o);
  return chaosSchedule({
    seed: o.chaos,
    kinds: o.faults,
    roles: [...p.roles.keys()],
    links: p.net?.links() ?? [],
    tasks:
      o.durationMs === undefined ? o.tasks : Math.max(1, Math.round((o.rate * windowMs) / 1000)),
    windowMs,
    events: o.durationMs === undefined ? 12 : Math.max(12, Math.round(windowMs / 3_000)),
    leaseMs: p.leaseMs,
    brokerNodes: run.broker?.nodes ?? 0,
  });
}

async function runClaimed(
  cfg: Config,
  urls: { state: string; data: string },
  o: VerifyOptions,
  run: RunContext,
): Promise<VerifyReport> {
  const how = o.schedule !== undefined ? "replay" : (o.chaos ?? "calm");
  const orgId = `verify-${how}-${run.started.toString(36)}`;
  const logDir = o.logDir ?? mkdtempSync(join(tmpdir(), "harness-verify-"));
  const proxied = o.chaos !== undefined || o.schedule !== undefined;
  const p = await startPipeline(cfg, urls, { workers: o.workers, exec: o.exec, logDir, proxied });
  try {
    const r = await playAndWait(p, o, { ...run, orgId, logDir });
    const observed =
      p.net === undefined ? undefined : { grants: p.net.leaseGrants(), leaseMs: p.leaseMs };
    const queues = p.queue.admin();
    const check = await checkInvariants(p.state, p.data, { orgId, observed, queues });
    return {
      orgId,
      seed: o.chaos ?? null,
      faults: [...o.faults],
      embedded: o.embedded,
      queues: run.broker?.where ?? "pgqueue",
      exec: o.exec ?? null,
      durationMs: o.durationMs ?? null,
      schedule: r.schedule.map(describeEvent),
      events: r.schedule,
      played: r.faults.played,
      injected: r.faults.injected,
      restarts: p.supervisor.crashes(),
      resources: r.resources,
      tasksCreated: r.created,
      elapsedMs: Date.now() - run.started,
      timedOut: r.timedOut,
      check: withInvariant(check, survived(p.roles)),
    };
  } finally {
    await p.close();
  }
}

/** Creates the tasks, plays the schedule, waits until quiet; the roles are stopped at the end. */
async function playAndWait(
  p: Pipeline,
  o: VerifyOptions,
  run: RunContext & { orgId: string; logDir: string },
) {
  const schedule = scheduleFor(o, p, run);
  const payload = o.workMs > 0 ? { alerts: o.alerts, work_ms: o.workMs } : { alerts: o.alerts };
  const feed = new TaskFeed(p.state, run.orgId, payload);
  // Once the roles have warmed up (code loaded, pools filled): 2 s, or a tenth of a soak up to 30 s.
  const warmUpMs = Math.min(30_000, Math.max(2_000, (o.durationMs ?? 0) / 10));
  const startSample = sleep(warmUpMs).then(() => sampleResources(p));
  startSample.catch(() => {});
  const publisher = p.queue.publisher();
  const targets = {
    ...{ state: p.state, publisher, roles: p.roles, net: p.net },
    ...{ postgres: run.pg, broker: run.broker },
  };
  const faults = new Injector({ ...targets, taskIds: () => feed.ids });
  let timedOut = true;
  let end: Record<string, ProcResources | null> = {};
  try {
    await feedAndPlay(feed, faults, schedule, { ...o, windowMs: windowOf(o) });
    const fields = { org_id: run.orgId, tasks: feed.ids.length, log_dir: run.logDir };
    log.info(VERIFY_LOG.tasksCreated, { ...fields, alerts: o.alerts });
    await faults.settle();
    const deadline = run.started + (o.durationMs ?? 0) + o.timeoutMs;
    timedOut = !(await waitQuiet(p.state, p.queue, { orgId: run.orgId, deadline }));
    await startSample;
    end = await sampleResources(p);
  } finally {
    faults.resumeAll();
    await p.stopRoles();
  }
  const start = await startSample;
  const resources = Object.fromEntries(
    Object.entries(start).map(([k, s]) => [k, { start: s, end: end[k] ?? null }]),
  );
  return { schedule, faults, timedOut, resources, created: feed.ids.length };
}

/**
 * Creates the tasks while the schedule plays: all at once for a calm run;
 * under faults spread over the schedule's window, so that faults land on
 * work in flight; in a soak at a steady rate for the whole duration.
 */
async function feedAndPlay(
  feed: TaskFeed,
  faults: Injector,
  schedule: readonly ChaosEvent[],
  o: VerifyOptions & { windowMs: number },
): Promise<void> {
  const t0 = Date.now();
  const feeding =
    o.durationMs !== undefined
      ? feed.steady(o.rate, t0 + o.durationMs)
      : schedule.length === 0
        ? feed.create(o.tasks)
        : feed.steady((o.tasks * 1000) / o.windowMs, t0 + o.windowMs, o.tasks);
  for (const event of schedule) {
    await sleep(t0 + event.atMs - Date.now());
    await faults.apply(event, t0);
  }
  await feeding;
}

/**
 * A role's process may die only of kill -9. One that exits before it was up
 * (an unreachable database stops a role at start, by contract: it started
 * while a fault was on) is restarted and only counted; one that exits after
 * it was up died of a fault it should have survived.
 */
function survived(roles: ReadonlyMap<string, RoleProcess>): Invariant {
  const died: string[] = [];
  let refused = 0;
  for (const [name, role] of roles) {
    for (const exit of role.exits) {
      if (exit.signal === "SIGKILL") continue;
      if (!exit.ready) refused++;
      else died.push(`${name} pid ${exit.pid} exited ${exit.signal ?? `with code ${exit.code}`}`);
    }
  }
  return {
    name: "every role survived every fault but kill -9",
    ok: died.length === 0,
    detail: `${died.length === 0 ? "no process died" : died.join("; ")}; ${refused} start(s) refused during a fault`,
  };
}

function withInvariant(check: CheckReport, inv: Invariant): CheckReport {
  const invariants = [...check.invariants, inv];
  return { ...check, invariants, ok: invariants.every((i) => i.ok) };
}
