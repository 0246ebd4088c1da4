import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Config } from "../config";
import { migrateAll } from "../db/migrator";
import { createLogger } from "../log";
import { type EmbeddedPostgres, freePort, startEmbeddedPostgres } from "../platform/embedded";
import { type LaunchedRoles, launchRoles } from "../platform/launcher";
import { migrateQueues } from "../queue/migrate";
import { platformUsers, platformUsersRemove, queueEnv, roleEnvs } from "./credentials";
import type { Home } from "./home";

/**
 * The whole platform on one machine: databases (given, or an embedded
 * PostgreSQL under the home folder), migrations (the queue streams too, on
 * a broker the user gave with `--queue`/QUEUE_URL), a database user per role
 * (./credentials.ts), and the roles as supervised child processes, each with
 * only its own credentials, restarted when they die.
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
  /** The dashboard (`harness ui`) and its login token. */
  ui: { url: string; token: string };
  logDir: string;
  embedded: boolean;
  stop(): Promise<void>;
}

/** `.harness/env`: `source` it in another shell to reach the running platform (`harness status --watch`). */
function writeEnvFile(file: string, env: Record<string, string | undefined>): void {
  const lines = Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`);
  writeFileSync(file, `${lines.join("\n")}\n`, { mode: 0o600 });
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

/**
 * Writes `.harness/env` (the operator's own settings: owner URLs, for `source
 * .harness/env` in another shell) and makes a database user per role; each
 * role's environment, with only its own credentials.
 */
async function platformEnvs(
  cfg: Config,
  home: Home,
  p: { owner: { state: string; data: string }; dispatcherUrl: string; uiToken: string },
) {
  const objectStoreUrl = cfg.objectStoreUrl ?? pathToFileURL(home.objectsDir).href;
  const internalAuthToken = cfg.internalAuthToken ?? home.secrets.internal_auth_token;
  const signingKey = cfg.capability.signingKey ?? home.secrets.capability_signing_key;
  writeEnvFile(join(home.dir, "env"), {
    STATE_DATABASE_URL: p.owner.state,
    DATA_DATABASE_URL: p.owner.data,
    OBJECT_STORE_URL: objectStoreUrl,
    INTERNAL_AUTH_TOKEN: internalAuthToken,
    CAPABILITY_SIGNING_KEY: signingKey,
    DISPATCHER_URL: p.dispatcherUrl,
    // On a broker (`--queue`, QUEUE_URL): `source .harness/env` finds it too.
    ...queueEnv(cfg.queue),
    // Tells a one-shot command run from `source .harness/env` where its settings came from.
    HARNESS_UP_DIR: home.dir,
  });
  return roleEnvs({
    users: await platformUsers(p.owner),
    objectStoreUrl,
    dispatcherUrl: p.dispatcherUrl,
    internalAuthToken,
    signingKey,
    uiAuthToken: p.uiToken,
    s3: cfg.s3,
    queue: cfg.queue,
  });
}

export async function startPlatform(
  cfg: Config,
  home: Home,
  options: PlatformOptions,
): Promise<RunningPlatform> {
  const db = await databases(cfg, home);
  let launched: LaunchedRoles | undefined;
  const owner = { state: db.state, data: db.data };
  let usersMade = false;
  const stop = async () => {
    await launched?.supervisor.stopAll();
    // A PostgreSQL you gave keeps no login user of ours. (Not the embedded one,
    // up's own: its package stops it on SIGINT too, and that race is better short.)
    if (usersMade && db.pg === undefined) await platformUsersRemove(owner);
    await db.pg?.stop();
  };
  try {
    for (const report of await migrateAll(owner)) {
      if (report.applied.length)
        log.info("migrated", { database: report.set, applied: report.applied });
    }
    const queues = await migrateQueues(cfg);
    if (queues !== undefined) log.info("migrated", { queues });
    const port = process.env.PORT ? cfg.port : await freePort();
    const dispatcherUrl = `http://127.0.0.1:${port}`;
    usersMade = true;
    const ui = {
      port: process.env.UI_PORT ? cfg.ui.port : await freePort(),
      token: cfg.ui.authToken ?? home.secrets.ui_auth_token,
    };
    const env = await platformEnvs(cfg, home, { owner, dispatcherUrl, uiToken: ui.token });
    launched = await launchRoles({
      logDir: home.logDir,
      env,
      dispatchers: [{ name: "dispatcher", port }],
      workers: options.workers,
      workerArgs: ["--concurrency", String(options.concurrency)],
      sinkArgs: [],
    });
    const uiArgs = ["ui", "--port", String(ui.port)];
    launched.supervisor.start({ name: "ui", args: uiArgs, env: env.ui, restart: true });
    return {
      stateUrl: db.state,
      dataUrl: db.data,
      dispatcherUrl,
      ui: { url: `http://127.0.0.1:${ui.port}`, token: ui.token },
      logDir: join(home.logDir),
      embedded: db.pg !== undefined,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
