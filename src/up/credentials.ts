import { createHash } from "node:crypto";
import type { Config } from "../config";
import { createLogger } from "../log";
import { type OwnerUrls, type RoleUrls, userAdd, userRemove } from "../users/provision";

/**
 * Each role of `harness up` gets only its own credentials (DESIGN.md's role
 * table): `up` makes a database user per role with the owner's URLs, a new
 * password at every start, and hands each child process its own variables.
 * Children inherit up's environment, so every secret a role must not hold is
 * cleared in its environment explicitly.
 */

const log = createLogger("up");

export type PlatformRole = "dispatcher" | "worker" | "sink" | "ui";
const ROLES: readonly PlatformRole[] = ["dispatcher", "worker", "sink", "ui"];
export type RoleEnv = Record<string, string | undefined>;

/** Every variable that carries a secret or a privileged URL. */
const SECRETS = [
  "DATABASE_URL",
  "STATE_DATABASE_URL",
  "DATA_DATABASE_URL",
  "INTERNAL_AUTH_TOKEN",
  "CAPABILITY_SIGNING_KEY",
  "CAPABILITY_KEY_FILE",
  "S3_ACCESS_KEY_ID",
  "S3_SECRET_ACCESS_KEY",
  "UI_AUTH_TOKEN",
] as const;

/**
 * The user name of a role for these databases: stable, and distinct for two
 * platforms on one server (roles are cluster-wide, databases are not).
 */
export function upUserName(owner: OwnerUrls, role: PlatformRole): string {
  // Database names only: one server never holds two of a name, and the
  // embedded server's port changes from one run to the next.
  const db = (url: string) => new URL(url).pathname;
  const tag = createHash("sha256")
    .update(`${db(owner.state)}|${db(owner.data)}`)
    .digest("hex")
    .slice(0, 8);
  return `harness_up_${tag}_${role}`;
}

/**
 * The users of the roles (made, or given new passwords; on a
 * PostgreSQL you gave, dropped again when up stops). Where they
 * cannot be made — the owner may not create roles — every role connects as
 * the owner, with one warning here and one from each role as it starts.
 */
export async function platformUsers(owner: OwnerUrls): Promise<Record<PlatformRole, RoleUrls>> {
  const name = (role: PlatformRole) => upUserName(owner, role);
  try {
    const [dispatcher, worker, sink, ui] = await Promise.all([
      userAdd(owner, { name: name("dispatcher"), role: "dispatcher", rotate: true }),
      userAdd(owner, { name: name("worker"), role: "worker", rotate: true }),
      userAdd(owner, { name: name("sink"), role: "sink", rotate: true }),
      // The dashboard reads, and redrives dead letters.
      userAdd(owner, { name: name("ui"), role: "reader", redrive: true, rotate: true }),
    ]);
    return { dispatcher, worker, sink, ui };
  } catch (err) {
    log.warn(UP_LOG.noUsers, { err });
    const urls = { STATE_DATABASE_URL: owner.state, DATA_DATABASE_URL: owner.data };
    return { dispatcher: urls, worker: urls, sink: urls, ui: urls };
  }
}

/** Drops the roles' users once the roles stopped (best effort). */
export async function platformUsersRemove(owner: OwnerUrls): Promise<void> {
  for (const role of ROLES) {
    await userRemove(owner, upUserName(owner, role)).catch((err: unknown) => {
      log.debug("could not drop a role's user", { role, err });
    });
  }
}

export const UP_LOG = {
  noUsers: "could not make a database user per role: every role connects as the owner",
} as const;

export interface RoleEnvInputs {
  users: Record<PlatformRole, RoleUrls>;
  objectStoreUrl: string;
  dispatcherUrl: string;
  internalAuthToken: string;
  signingKey: string;
  uiAuthToken: string;
  s3: Config["s3"];
  /** Where the queues are (unset: pgqueue in the state database). */
  queue?: Config["queue"];
}

/** QUEUE_URL and QUEUE_NAMESPACE when the queues are on a broker; nothing for pgqueue. */
export function queueEnv(queue: Config["queue"]): Record<string, string> {
  return queue.url === undefined ? {} : { QUEUE_URL: queue.url, QUEUE_NAMESPACE: queue.namespace };
}

/**
 * Each role's environment: its own URLs and secrets, every other secret
 * cleared. With the queues on a broker every role gets its URL, and the
 * worker (no database at all) and the sink (only DATA) no state database.
 */
export function roleEnvs(p: RoleEnvInputs): Record<PlatformRole, RoleEnv> {
  const all = roleEnvsOnPgqueue(p);
  if (p.queue?.url === undefined) return all;
  const queue = queueEnv(p.queue);
  return {
    dispatcher: { ...all.dispatcher, ...queue },
    worker: { ...all.worker, ...queue, STATE_DATABASE_URL: undefined },
    sink: { ...all.sink, ...queue, STATE_DATABASE_URL: undefined },
    ui: { ...all.ui, ...queue },
  };
}

function roleEnvsOnPgqueue(p: RoleEnvInputs): Record<PlatformRole, RoleEnv> {
  const cleared: RoleEnv = Object.fromEntries(SECRETS.map((k) => [k, undefined]));
  const store: RoleEnv = {
    OBJECT_STORE_URL: p.objectStoreUrl,
    S3_ACCESS_KEY_ID: p.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: p.s3.secretAccessKey,
  };
  return {
    dispatcher: {
      ...cleared,
      STATE_DATABASE_URL: p.users.dispatcher.STATE_DATABASE_URL,
      INTERNAL_AUTH_TOKEN: p.internalAuthToken,
      CAPABILITY_SIGNING_KEY: p.signingKey,
      OBJECT_STORE_URL: p.objectStoreUrl,
    },
    worker: {
      ...cleared,
      ...store,
      STATE_DATABASE_URL: p.users.worker.STATE_DATABASE_URL,
      DISPATCHER_URL: p.dispatcherUrl,
      INTERNAL_AUTH_TOKEN: p.internalAuthToken,
    },
    sink: {
      ...cleared,
      ...store,
      STATE_DATABASE_URL: p.users.sink.STATE_DATABASE_URL,
      DATA_DATABASE_URL: p.users.sink.DATA_DATABASE_URL,
    },
    ui: {
      ...cleared,
      STATE_DATABASE_URL: p.users.ui.STATE_DATABASE_URL,
      DATA_DATABASE_URL: p.users.ui.DATA_DATABASE_URL,
      UI_AUTH_TOKEN: p.uiAuthToken,
    },
  };
}
