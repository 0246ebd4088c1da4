import type { Config } from "../config";
import { connect } from "../db/connect";
import { type CheckedRole, connectionExcess } from "../db/excess";
import type { Logger } from "../log";

/**
 * Invariant 9's early warning: a role that starts with more than it needs
 * — an owner's or superuser's connection, a member of another group, or a
 * secret of another role in its environment — logs ONE warning line saying
 * what and how to fix it, and runs on. The check never stops a role: its
 * own start reports an unreachable database.
 */

export const EXCESS_LOG = {
  warning: "this role runs with more privilege than it needs",
} as const;

/** Variables each role never needs: holding them is holding another role's secret. */
const FOREIGN_ENV: Record<CheckedRole, readonly string[]> = {
  dispatcher: ["DATA_DATABASE_URL", "S3_SECRET_ACCESS_KEY"],
  worker: ["DATA_DATABASE_URL", "CAPABILITY_SIGNING_KEY", "CAPABILITY_KEY_FILE"],
  sink: ["CAPABILITY_SIGNING_KEY", "CAPABILITY_KEY_FILE", "INTERNAL_AUTH_TOKEN"],
};

const FIX: Record<CheckedRole, string> = {
  dispatcher:
    "connect with the STATE_DATABASE_URL of `harness user add --role dispatcher NAME`, and give the dispatcher only that, INTERNAL_AUTH_TOKEN, its signing key and OBJECT_STORE_URL",
  worker:
    "connect with the STATE_DATABASE_URL of `harness user add --role worker NAME`, and give the worker only that, DISPATCHER_URL, INTERNAL_AUTH_TOKEN and the object store's variables",
  sink: "connect with the URLs of `harness user add --role sink NAME`, and give the sink only those and the object store's variables",
};

/** With the queues on NATS (QUEUE_URL), the worker needs no database, the sink only DATA. */
const FOREIGN_WITH_NATS: Record<CheckedRole, readonly string[]> = {
  dispatcher: [],
  worker: ["STATE_DATABASE_URL", "DATABASE_URL"],
  sink: ["STATE_DATABASE_URL"],
};

export function envExcess(
  role: CheckedRole,
  env: Record<string, string | undefined>,
  queueOnNats = false,
): string[] {
  const foreign = [...FOREIGN_ENV[role], ...(queueOnNats ? FOREIGN_WITH_NATS[role] : [])];
  const held = foreign.filter((k) => (env[k] ?? "") !== "");
  return held.length === 0 ? [] : [`its environment holds ${held.join(", ")}`];
}

async function databaseExcess(url: string, role: CheckedRole): Promise<string[]> {
  const sql = connect(url, { name: `${role}-check`, max: 1 });
  try {
    return await connectionExcess(sql, { role });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Checks the role's environment and each database it connects to; warns once if anything is too much. */
export async function warnExcessPrivilege(
  role: CheckedRole,
  cfg: Config,
  env: Record<string, string | undefined>,
  log: Logger,
): Promise<string[]> {
  const urls = new Set<string>();
  if (cfg.stateDatabaseUrl !== undefined) urls.add(cfg.stateDatabaseUrl);
  if (role === "sink" && cfg.dataDatabaseUrl !== undefined) urls.add(cfg.dataDatabaseUrl);
  const found = envExcess(role, env, cfg.queue.url !== undefined);
  for (const url of urls) {
    try {
      for (const f of await databaseExcess(url, role)) if (!found.includes(f)) found.push(f);
    } catch (err) {
      log.debug("could not check this role's database privileges", { err });
    }
  }
  if (found.length > 0) log.warn(EXCESS_LOG.warning, { role, excess: found, fix: FIX[role] });
  return found;
}
