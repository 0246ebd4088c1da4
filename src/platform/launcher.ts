import { DISPATCHER_LOG } from "../dispatcher/logs";
import { SINK_LOG } from "../sink/logs";
import { sleep } from "../sleep";
import { WORKER_LOG } from "../worker/logs";
import { type RoleProcess, Supervisor } from "./supervisor";

/**
 * Starts a platform's long-running roles as supervised child processes, in
 * the order they depend on each other: the dispatchers first (waiting until
 * each answers /readyz), then the workers (worker i talks to dispatcher
 * i mod n), then the sink. `harness up` and `harness verify` both start
 * their roles here; verify reroutes each role's connections through its
 * fault proxy with `route`.
 */

export type RoleEnv = Record<string, string | undefined>;

/**
 * The info line each role logs once it is up (connected, listening): the
 * supervisor tells a process that failed to start (an unreachable database
 * stops a role at start, by contract) from one that died while working.
 */
export const ROLE_READY_LOGS = {
  dispatcher: DISPATCHER_LOG.listening,
  worker: WORKER_LOG.started,
  sink: SINK_LOG.started,
} as const;

export interface LaunchPlan {
  /** Each role's stderr goes to `<logDir>/<name>.log`. */
  logDir: string;
  /** Each kind of role's environment (database and store URLs, secrets, timings). */
  env: Record<keyof typeof ROLE_READY_LOGS, RoleEnv>;
  /** One dispatcher per entry, named and listening on the given port. */
  dispatchers: ReadonlyArray<{ name: string; port: number }>;
  workers: number;
  workerArgs: readonly string[];
  sinkArgs: readonly string[];
  /** Rewrites one role's environment just before it starts (e.g. through a proxy). */
  route?: (role: string, env: RoleEnv) => RoleEnv;
  readyTimeoutMs?: number;
}

export interface LaunchedRoles {
  supervisor: Supervisor;
  /** Every role by name, in start order: dispatcher(s), workers, sink. */
  roles: Map<string, RoleProcess>;
  /** The dispatchers' own URLs (not rerouted), in plan order. */
  dispatcherUrls: string[];
}

/** Polls `<url>/readyz` until it answers 2xx; throws after `timeoutMs`. */
export async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`the dispatcher at ${url} was not ready within ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}

/** Waits until every role's process logged its ready line; the names still not up at the deadline. */
export async function waitRolesUp(
  roles: ReadonlyMap<string, RoleProcess>,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const down = [...roles].filter(([, r]) => !r.ready).map(([name]) => name);
    if (down.length === 0 || Date.now() > deadline) return down;
    await sleep(50);
  }
}

/** Starts every role of the plan; on a failure the roles already started are stopped. */
export async function launchRoles(plan: LaunchPlan): Promise<LaunchedRoles> {
  const supervisor = new Supervisor(plan.logDir);
  const roles = new Map<string, RoleProcess>();
  const route = plan.route ?? ((_role: string, env: RoleEnv) => env);
  const start = (
    name: string,
    args: readonly [keyof typeof ROLE_READY_LOGS, ...string[]],
    env: RoleEnv,
  ) => {
    const readyLog = ROLE_READY_LOGS[args[0]];
    const spec = { name, args: [...args], env: route(name, env), restart: true, readyLog };
    roles.set(name, supervisor.start(spec));
  };
  const dispatcherUrls = plan.dispatchers.map((d) => `http://127.0.0.1:${d.port}`);
  try {
    for (const d of plan.dispatchers)
      start(d.name, ["dispatcher"], { ...plan.env.dispatcher, PORT: String(d.port) });
    const timeoutMs = plan.readyTimeoutMs ?? 30_000;
    for (const url of dispatcherUrls) await waitReady(url, timeoutMs);
    for (let i = 1; i <= plan.workers; i++) {
      const url = dispatcherUrls[i % dispatcherUrls.length];
      const env = { ...plan.env.worker, DISPATCHER_URL: url };
      start(`worker-${i}`, ["worker", ...plan.workerArgs], env);
    }
    start("sink", ["sink", ...plan.sinkArgs], plan.env.sink);
  } catch (err) {
    await supervisor.stopAll();
    throw err;
  }
  return { supervisor, roles, dispatcherUrls };
}
