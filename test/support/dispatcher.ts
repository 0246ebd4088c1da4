import { freePort } from "./embedded";
import { type Role, spawnHarness } from "./processes";
import { waitFor } from "./wait";

/**
 * A REAL dispatcher for tests: `harness dispatcher` as a child process on a
 * free loopback port, against `databaseUrl` (already migrated), ready once
 * `GET /readyz` answers 200.
 *
 *   const d = await startDispatcher({ databaseUrl: db().url, env: { LEASE_DURATION_MS: "1000" } });
 *   await fetch(`${d.url}/internal/task-claim`, { headers: { authorization: `Bearer ${d.internalToken}` }, ... });
 *   await d.stop();   // SIGTERM, waits for the exit code
 *
 * Defaults: a fixed INTERNAL_AUTH_TOKEN (returned as `internalToken`),
 * OBJECT_STORE_URL=file:///tmp/harness-test-objects, keys generated into the
 * state database. Anything in `env` overrides them.
 */

export const TEST_INTERNAL_TOKEN = "test-internal-token-0123456789";
export const TEST_OBJECT_STORE_URL = "file:///tmp/harness-test-objects";

export interface TestDispatcher {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  internalToken: string;
  role: Role;
  /** SIGTERM and wait; resolves to the exit code. */
  stop(): Promise<number>;
}

export async function startDispatcher(opts: {
  databaseUrl: string;
  env?: Record<string, string | undefined>;
  port?: number;
  name?: string;
}): Promise<TestDispatcher> {
  const port = opts.port ?? (await freePort());
  const env = {
    DATABASE_URL: opts.databaseUrl,
    INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
    OBJECT_STORE_URL: TEST_OBJECT_STORE_URL,
    ...opts.env,
    PORT: String(port),
  };
  const role = spawnHarness(opts.name ?? "dispatcher", ["dispatcher"], env);
  const url = `http://127.0.0.1:${port}`;
  const died = role.exited.then((code) => {
    throw new Error(`dispatcher exited with ${code} before ready: ${role.stderr().trim()}`);
  });
  const ready = waitFor(
    async () => {
      const res = await fetch(`${url}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    { what: `dispatcher ready on ${url}`, timeoutMs: 20_000 },
  );
  died.catch(() => {});
  try {
    await Promise.race([ready, died]);
  } catch (err) {
    role.proc.kill("SIGKILL");
    throw err;
  }
  return {
    url,
    port,
    internalToken: env.INTERNAL_AUTH_TOKEN ?? TEST_INTERNAL_TOKEN,
    role,
    stop: () => role.stop("SIGTERM"),
  };
}
