import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Config } from "../config";
import { connect, type Sql } from "../db/connect";
import { createLogger } from "../log";
import { freePort } from "../platform/embedded";
import { type LaunchedRoles, launchRoles, type RoleEnv, waitRolesUp } from "../platform/launcher";
import { type ProcResources, procResources } from "../platform/procfs";
import type { RoleProcess } from "../platform/supervisor";
import { openQueue } from "../queue/open";
import type { QueueBackend } from "../queue/seam";
import { sleep } from "../sleep";
import { FaultNet } from "./net";

const log = createLogger("verify");

/**
 * verify's pipeline: two dispatchers, W workers and a sink, each a child
 * process restarted when it dies, with the short leases and visibility
 * timeouts that let faults play out in seconds. With `proxied`, every role
 * reaches PostgreSQL, the dispatchers and a single broker through verify's
 * fault proxy.
 */

export interface PipelineOptions {
  workers: number;
  /** `--exec CMD [ARGS…]` for every worker. */
  exec?: string[] | undefined;
  logDir: string;
  proxied: boolean;
}

export interface Pipeline extends LaunchedRoles {
  state: Sql;
  data: Sql;
  /** verify's own queue connection (the duplicates it injects). */
  queue: QueueBackend;
  net: FaultNet | undefined;
  leaseMs: number;
  /** Stops the roles and the proxy (once; later calls wait for the first). */
  stopRoles(): Promise<void>;
  /** Stops the roles if still running, and closes verify's own pools. */
  close(): Promise<void>;
}

const execArgs = (exec: string[] | undefined): string[] =>
  exec === undefined ? [] : ["--exec", ...exec.slice(0, 1), "--", ...exec.slice(1)];

function roleEnv(cfg: Config, urls: { state: string; data: string }, o: PipelineOptions): RoleEnv {
  return {
    STATE_DATABASE_URL: urls.state,
    DATA_DATABASE_URL: urls.data,
    DATABASE_URL: undefined,
    OBJECT_STORE_URL: cfg.objectStoreUrl ?? pathToFileURL(join(o.logDir, "objects")).href,
    INTERNAL_AUTH_TOKEN: cfg.internalAuthToken ?? crypto.randomUUID(),
    LEASE_DURATION_MS: process.env.LEASE_DURATION_MS ?? "2000",
    VISIBILITY_TIMEOUT_MS: process.env.VISIBILITY_TIMEOUT_MS ?? "2000",
    MAX_ATTEMPTS: process.env.MAX_ATTEMPTS ?? "10",
    MAX_RECEIVES: process.env.MAX_RECEIVES ?? "50",
    QUEUE_URL: cfg.queue.url,
    // A broker's run has a namespace of its own (./broker.ts); pgqueue ignores it.
    QUEUE_NAMESPACE: cfg.queue.namespace,
    // At least info: the supervisor learns from a role's "started" line that it is up.
    LOG_LEVEL: process.env.LOG_LEVEL === "debug" ? "debug" : "info",
  };
}

export async function startPipeline(
  cfg: Config,
  urls: { state: string; data: string },
  o: PipelineOptions,
): Promise<Pipeline> {
  const env = roleEnv(cfg, urls, o);
  const dispatchers = [];
  for (const name of ["dispatcher-1", "dispatcher-2"])
    dispatchers.push({ name, port: await freePort() });
  const net = o.proxied
    ? new FaultNet([
        { label: "postgres", url: urls.state },
        { label: "postgres-data", url: urls.data },
        ...(cfg.queue.url === undefined ? [] : [{ label: "broker", url: cfg.queue.url }]),
        ...dispatchers.map((d) => ({ label: d.name, url: `http://127.0.0.1:${d.port}` })),
      ])
    : undefined;
  const launched = await launchRoles({
    logDir: o.logDir,
    // Every role with the owner's URLs: verify proves the invariants, not the grants.
    env: { dispatcher: env, worker: env, sink: env },
    dispatchers,
    workers: o.workers,
    workerArgs: ["--concurrency", "8", ...execArgs(o.exec)],
    sinkArgs: ["--concurrency", "4"],
    route: net === undefined ? undefined : (role, e) => net.route(role, e),
  }).catch((err: unknown) => {
    net?.stop();
    throw err;
  });
  // Faults start on a pipeline that is up: a role hit while starting would just exit.
  const down = await waitRolesUp(launched.roles, 60_000);
  if (down.length > 0) log.warn("roles not up after 60 s; going on", { roles: down });
  const state = connect(urls.state, { name: "verify", max: 4 });
  const data = connect(urls.data, { name: "verify", max: 2 });
  const queue = await openQueue({ ...cfg, stateDatabaseUrl: urls.state }, { name: "verify" });
  let stopped: Promise<void> | undefined;
  const stopRoles = () => {
    stopped ??= launched.supervisor.stopAll().then(() => net?.stop());
    return stopped;
  };
  return {
    ...launched,
    state,
    data,
    queue,
    net,
    leaseMs: Number(env.LEASE_DURATION_MS),
    stopRoles,
    async close() {
      await stopRoles();
      await queue.close();
      await state.end({ timeout: 5 });
      await data.end({ timeout: 5 });
    },
  };
}

/**
 * Each role's current process: pid, resident memory and open file
 * descriptors, from /proc. A role being restarted (a kill just hit it) is
 * looked at again for up to `waitMs`, until it runs; null if it never does.
 */
export async function sampleResources(
  p: LaunchedRoles,
  waitMs = 3_000,
): Promise<Record<string, ProcResources | null>> {
  const deadline = Date.now() + waitMs;
  const sample = async (role: RoleProcess): Promise<ProcResources | null> => {
    for (;;) {
      const r = role.running ? procResources(role.pid) : undefined;
      if (r !== undefined || Date.now() > deadline) return r ?? null;
      await sleep(50);
    }
  };
  const entries = await Promise.all(
    [...p.roles].map(
      async ([n, r]): Promise<[string, ProcResources | null]> => [n, await sample(r)],
    ),
  );
  return Object.fromEntries(entries);
}
