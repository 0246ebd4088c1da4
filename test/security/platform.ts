import { afterAll, beforeAll, expect } from "bun:test";
import { randomBytes } from "node:crypto";
import { sqlState } from "../../src/db/errors";
import { generateSigningJwk } from "../../src/dispatcher/keys";
import { type PlatformRole, platformUsers, roleEnvs, upUserName } from "../../src/up/credentials";
import { type TempStore, tempStore } from "../sink/helpers";
import { freshDatabase, type TestDatabase } from "../support/db";
import type { TestDispatcher } from "../support/dispatcher";
import { freePort } from "../support/embedded";
import { spawnHarness } from "../support/processes";
import { removeUsers } from "../support/users";
import { waitFor } from "../support/wait";

/**
 * A platform whose roles hold exactly what `harness up` gives them: two
 * databases (state and data), a database user per role made the way `up`
 * makes them (src/up/credentials.ts, through `user add`'s code), each role's
 * environment from the same function `up` uses, and a real dispatcher
 * running with its own. The tests then act as a compromised worker or sink
 * with nothing but that role's environment.
 */

export type RoleEnv = Record<string, string>;
const ROLES = ["dispatcher", "worker", "sink", "ui"] as const;

export interface SecurePlatform {
  state: TestDatabase;
  data: TestDatabase;
  store: TempStore;
  /** Each role's environment, as `up` hands it to the child process. */
  env: Record<PlatformRole, RoleEnv>;
  /** Timings every role of this platform runs with (not secrets): short leases for tests. */
  settings: RoleEnv;
  dispatcher: TestDispatcher;
}

function defined(env: Record<string, string | undefined>): RoleEnv {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  );
}

async function startPlatform(extra: RoleEnv): Promise<SecurePlatform> {
  const [state, data] = await Promise.all([freshDatabase(), freshDatabase()]);
  const store = await tempStore();
  const port = await freePort();
  const owner = { state: state.url, data: data.url };
  const envs = roleEnvs({
    users: await platformUsers(owner),
    objectStoreUrl: store.url,
    dispatcherUrl: `http://127.0.0.1:${port}`,
    internalAuthToken: randomBytes(24).toString("base64url"),
    signingKey: JSON.stringify(await generateSigningJwk()),
    uiAuthToken: randomBytes(24).toString("base64url"),
    s3: {
      endpoint: undefined,
      accessKeyId: undefined,
      secretAccessKey: undefined,
      region: undefined,
    },
  });
  const env = {
    dispatcher: defined(envs.dispatcher),
    worker: defined(envs.worker),
    sink: defined(envs.sink),
    ui: defined(envs.ui),
  };
  const settings = { LEASE_DURATION_MS: "3000", ...extra };
  const role = spawnHarness("dispatcher", ["dispatcher"], {
    ...env.dispatcher,
    ...settings,
    PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (role.proc.exitCode !== null) throw new Error(`dispatcher exited: ${role.stderr()}`);
      return (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200;
    },
    { what: "the dispatcher to be ready", timeoutMs: 20_000 },
  );
  const internalToken = env.dispatcher.INTERNAL_AUTH_TOKEN ?? "";
  const dispatcher = { url, port, internalToken, role, stop: () => role.stop("SIGTERM") };
  return { state, data, store, env, settings, dispatcher };
}

async function stopPlatform(p: SecurePlatform): Promise<void> {
  await p.dispatcher.stop();
  const owner = { state: p.state.url, data: p.data.url };
  await removeUsers(ROLES.map((role) => upUserName(owner, role)));
  await Promise.all([p.state.drop(), p.data.drop()]);
  p.store.remove();
}

/**
 * The platform for this test file: started before its tests, stopped (users
 * dropped) after. `settings` adds timings (not secrets) every role runs with.
 */
export function useSecurePlatform(settings: RoleEnv = {}): () => SecurePlatform {
  let current: SecurePlatform | undefined;
  beforeAll(async () => {
    current = await startPlatform(settings);
  }, 60_000);
  afterAll(async () => {
    if (current !== undefined) await stopPlatform(current);
  }, 30_000);
  return () => {
    if (current === undefined) throw new Error("the platform is only there inside tests");
    return current;
  };
}

/** `url` with another database name: the same user and password elsewhere on the server. */
export function otherDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** What a statement did: "ok", or the SQLSTATE it failed with. */
export async function outcome(query: PromiseLike<unknown>): Promise<string> {
  try {
    await query;
    return "ok";
  } catch (err) {
    return sqlState(err) ?? (err instanceof Error ? err.message : String(err));
  }
}

/** Expects every statement to be refused with permission denied (42501). */
export async function expectDenied(
  attempts: Record<string, () => PromiseLike<unknown>>,
): Promise<void> {
  const got: Record<string, string> = {};
  for (const [what, run] of Object.entries(attempts)) got[what] = await outcome(run());
  expect(got).toEqual(Object.fromEntries(Object.keys(attempts).map((k) => [k, "42501"])));
}
