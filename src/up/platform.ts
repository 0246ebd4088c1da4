import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Config } from "../config";
import { migrateAll } from "../db/migrator";
import { createLogger } from "../log";
import { type EmbeddedPostgres, freePort, startEmbeddedPostgres } from "../platform/embedded";
import { Supervisor } from "../platform/supervisor";
import type { Home } from "./home";

/**
 * The whole platform on one machine: databases (given, or an embedded
 * PostgreSQL under the home folder), migrations, and the roles as
 * supervised child processes that are restarted when they die.
 */

const log = createLogger("up");

export interface PlatformOptions {
  workers: number;
  concurrency: number;
}

export interface RunningPlatform {
  stateUrl: string;
  dataUrl: string;
  dispatcherUrl: string;
  logDir: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/** `.harness/env`: `source` it in another shell to reach the running platform (`harness status --watch`). */
function writeEnvFile(file: string, env: Record<string, string | undefined>): void {
  const lines = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && e[0] !== "PORT")
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`);
  writeFileSync(file, `${lines.join("\n")}\n`, { mode: 0o600 });
}

async function waitReady(url: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`the dispatcher at ${url} was not ready within ${deadlineMs} ms`);
    }
    await Bun.sleep(100);
  }
}

async function databases(
  cfg: Config,
  home: Home,
): Promise<{ state: string; data: string; pg?: EmbeddedPostgres }> {
  if (cfg.stateDatabaseUrl !== undefined && cfg.dataDatabaseUrl !== undefined) {
    return { state: cfg.stateDatabaseUrl, data: cfg.dataDatabaseUrl };
  }
  log.info("starting the embedded PostgreSQL", { dir: home.pgDir });
  const pg = await startEmbeddedPostgres({
    dir: home.pgDir,
    password: home.secrets.postgres_password,
  });
  const url = pg.url();
  return { state: cfg.stateDatabaseUrl ?? url, data: cfg.dataDatabaseUrl ?? url, pg };
}

export async function startPlatform(
  cfg: Config,
  home: Home,
  options: PlatformOptions,
): Promise<RunningPlatform> {
  const db = await databases(cfg, home);
  const supervisor = new Supervisor(home.logDir);
  const stop = async () => {
    await supervisor.stopAll();
    await db.pg?.stop();
  };
  try {
    for (const report of await migrateAll({ state: db.state, data: db.data })) {
      if (report.applied.length)
        log.info("migrated", { database: report.set, applied: report.applied });
    }
    const port = process.env.PORT ? cfg.port : await freePort();
    const dispatcherUrl = `http://127.0.0.1:${port}`;
    const env = {
      STATE_DATABASE_URL: db.state,
      DATA_DATABASE_URL: db.data,
      DATABASE_URL: undefined,
      OBJECT_STORE_URL: cfg.objectStoreUrl ?? pathToFileURL(home.objectsDir).href,
      INTERNAL_AUTH_TOKEN: cfg.internalAuthToken ?? home.secrets.internal_auth_token,
      CAPABILITY_SIGNING_KEY: cfg.capability.signingKey ?? home.secrets.capability_signing_key,
      DISPATCHER_URL: dispatcherUrl,
      PORT: String(port),
      // Tells a one-shot command run from `source .harness/env` where its settings came from.
      HARNESS_UP_DIR: home.dir,
    };
    writeEnvFile(join(home.dir, "env"), env);
    supervisor.start({ name: "dispatcher", args: ["dispatcher"], env, restart: true });
    await waitReady(dispatcherUrl, 30_000);
    for (let i = 1; i <= options.workers; i++) {
      const args = ["worker", "--concurrency", String(options.concurrency)];
      supervisor.start({ name: `worker-${i}`, args, env, restart: true });
    }
    supervisor.start({ name: "sink", args: ["sink"], env, restart: true });
    return {
      stateUrl: db.state,
      dataUrl: db.data,
      dispatcherUrl,
      logDir: join(home.logDir),
      embedded: db.pg !== undefined,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
