import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";
import { createLogger } from "../log";
import type { Db, Tx } from "./connect";
import { alertEvents, sinkBatches } from "./data";
import { SQLSTATE, sqlState } from "./errors";
import { ident } from "./quote";
import { outbox, queueMessages, signingKeys, taskAttempts, tasks } from "./state";

/**
 * Least privilege (DESIGN.md's role table, invariant 9), as data: the
 * NOLOGIN group roles every harness user belongs to, and exactly what each
 * may do in each database. `harness migrate` applies it to every database it
 * migrates, every time (`privilegesApply`), in the migration's transaction:
 * missing groups are created, every privilege the groups hold in the
 * migrated schema is revoked, and this table is granted again. So a table a
 * later migration adds is covered by the next migrate with no grant
 * migration of its own, a grant made by hand is undone, and no session ever
 * sees a group without its grants. Roles are cluster-wide and grants are
 * per database: state and data may be one database or two, on one server or two.
 */

export const GROUPS = [
  "harness_dispatcher",
  "harness_worker",
  "harness_sink",
  "harness_reader",
  "harness_redriver",
] as const;
export type Group = (typeof GROUPS)[number];

export type GrantSet = "state" | "data";

export interface Grant {
  /** e.g. `SELECT, UPDATE`, or with columns `SELECT (id, org_id)`. */
  privileges: string;
  /** e.g. `TABLE state.tasks`, `SEQUENCE state.outbox_id_seq`, `SCHEMA state`. */
  on: string;
  to: readonly Group[];
}

const log = createLogger("migrate");
/** Beside migrate.ts's per-set keys (72_617_001, 72_617_002). */
const GRANTS_LOCK = 72_617_003;
/** One warning per process, though each database migrated finds the groups missing. */
let warnedMissing = false;

const table = (t: PgTable) => {
  const c = getTableConfig(t);
  return `${ident(c.schema ?? "public")}.${ident(c.name)}`;
};

/**
 * What a consumer may do with its queue; each function refuses a queue
 * other than the caller's group's (task_wakeup: worker, buffer_queue: sink).
 */
const QUEUE_CONSUMER_FUNCTIONS = [
  "queue_receive",
  "queue_ack",
  "queue_extend",
  "queue_record_error",
  "queue_dead_letter",
  "queue_depth",
];

export const GRANTS: Record<GrantSet, readonly Grant[]> = {
  state: [
    {
      privileges: "USAGE",
      on: "SCHEMA state",
      to: [
        "harness_dispatcher",
        "harness_worker",
        "harness_sink",
        "harness_reader",
        "harness_redriver",
      ],
    },
    // The dispatcher: tasks, attempts, outbox and signing keys; it publishes the outbox.
    { privileges: "SELECT, UPDATE", on: `TABLE ${table(tasks)}`, to: ["harness_dispatcher"] },
    {
      privileges: "SELECT, INSERT, UPDATE",
      on: `TABLE ${table(taskAttempts)}, ${table(outbox)}`,
      to: ["harness_dispatcher"],
    },
    { privileges: "USAGE", on: "SEQUENCE state.outbox_id_seq", to: ["harness_dispatcher"] },
    { privileges: "SELECT, INSERT", on: `TABLE ${table(signingKeys)}`, to: ["harness_dispatcher"] },
    // The reaper's sweep counts the wakeups still waiting (src/dispatcher/reaper.ts):
    // each message's queue, time and receive count, never a payload.
    {
      privileges: "SELECT (queue_name, available_at, receive_count)",
      on: `TABLE ${table(queueMessages)}`,
      to: ["harness_dispatcher"],
    },
    // The queue, only through its functions (drizzle/state/0008_queue_functions.sql).
    { privileges: "EXECUTE", on: "FUNCTION state.queue_publish", to: ["harness_dispatcher"] },
    {
      privileges: "EXECUTE",
      on: `FUNCTION ${QUEUE_CONSUMER_FUNCTIONS.map((f) => `state.${f}`).join(", ")}`,
      to: ["harness_worker", "harness_sink"],
    },
    // status, dlq list and the dashboard: every table but the signing keys. Lease
    // tokens included: the dashboard shows which attempt holds a lease, and a token
    // is no use without that attempt's capability, signed with a key readers never see.
    {
      privileges: "SELECT",
      on: `TABLE ${table(tasks)}, ${table(taskAttempts)}, ${table(outbox)}, ${table(queueMessages)}`,
      to: ["harness_reader"],
    },
    { privileges: "EXECUTE", on: "FUNCTION state.queue_redrive", to: ["harness_redriver"] },
  ],
  data: [
    { privileges: "USAGE", on: "SCHEMA data", to: ["harness_sink", "harness_reader"] },
    {
      privileges: "SELECT, INSERT",
      on: `TABLE ${table(alertEvents)}, ${table(sinkBatches)}`,
      to: ["harness_sink"],
    },
    { privileges: "USAGE", on: "SEQUENCE data.sink_batches_id_seq", to: ["harness_sink"] },
    {
      privileges: "SELECT",
      on: `TABLE ${table(alertEvents)}, ${table(sinkBatches)}`,
      to: ["harness_reader"],
    },
  ],
};

/** Who connects to each database at all. */
const CONNECTS: Record<GrantSet, readonly Group[]> = {
  state: [
    "harness_dispatcher",
    "harness_worker",
    "harness_sink",
    "harness_reader",
    "harness_redriver",
  ],
  data: ["harness_sink", "harness_reader"],
};

/**
 * Creates the missing groups (NOLOGIN). Two migrates of two databases on one
 * server may race to create one: the loser finds it made. A user that may
 * not create roles leaves them missing, with one warning. Returns the groups there now.
 */
export async function groupsEnsure(tx: Tx): Promise<Group[]> {
  const rows = await tx`SELECT rolname FROM pg_roles WHERE rolname = ANY(${[...GROUPS]}::text[])`;
  const present = new Set(rows.map((r) => String(r.rolname)));
  const refused: Group[] = [];
  for (const group of GROUPS) {
    if (present.has(group)) continue;
    try {
      // A savepoint of its own: a refused CREATE ROLE must not abort the migration.
      await tx.savepoint((sp) => sp.unsafe(`CREATE ROLE ${ident(group)} NOLOGIN`));
      present.add(group);
    } catch (err) {
      const code = sqlState(err);
      if (code === SQLSTATE.duplicateObject || code === SQLSTATE.uniqueViolation)
        present.add(group);
      else if (code === SQLSTATE.insufficientPrivilege) refused.push(group);
      else throw new Error(`creating the group role ${group}`, { cause: err });
    }
  }
  if (refused.length > 0 && !warnedMissing) {
    warnedMissing = true;
    log.warn(GRANTS_LOG.groupsMissing, {
      groups: refused,
      fix: "run harness migrate once as a user with CREATEROLE (or a superuser); until then every role must connect as the owner",
    });
  }
  return GROUPS.filter((g) => present.has(g));
}

export const GRANTS_LOG = {
  groupsMissing:
    "the harness group roles are missing and this user may not create them: roles cannot run with least privilege",
} as const;

/**
 * Makes the groups' privileges in this database's `set` schema exactly the
 * table above: revoke everything they hold there, grant the table. The
 * caller's transaction makes the swap atomic for every other session.
 */
export async function privilegesApply(tx: Tx, set: GrantSet): Promise<void> {
  // State and data on one database migrate under two locks; their grants touch one
  // catalog row (the database's): one at a time, always the last lock taken.
  await tx`SELECT pg_advisory_xact_lock(${GRANTS_LOCK})`;
  // Its bookkeeping may say migrated while the schema was dropped by hand: nothing to grant on.
  const [schemaRow] = await tx`SELECT to_regnamespace(${set}) IS NOT NULL AS present`;
  if (schemaRow?.present !== true) return;
  const groups = await groupsEnsure(tx);
  if (groups.length === 0) return;
  const all = groups.map(ident).join(", ");
  const schema = ident(set);
  await tx.unsafe(`REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${all}`);
  await tx.unsafe(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${all}`);
  await tx.unsafe(`REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM ${all}`);
  await tx.unsafe(`REVOKE ALL ON SCHEMA ${schema} FROM ${all}`);
  // A new function is executable by PUBLIC until told otherwise.
  await tx.unsafe(`REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} FROM PUBLIC`);
  for (const grant of GRANTS[set]) {
    const to = grant.to.filter((g) => groups.includes(g));
    if (to.length === 0) continue;
    await tx.unsafe(`GRANT ${grant.privileges} ON ${grant.on} TO ${to.map(ident).join(", ")}`);
  }
  await databaseConnectGrant(
    tx,
    CONNECTS[set].filter((g) => groups.includes(g)),
  );
}

/**
 * CONNECT on this database, for the groups that lack it (PUBLIC's was
 * revoked). Only its owner (or a superuser) may grant it; anyone else leaves
 * it to them. Nothing is written when every group may connect already.
 */
async function databaseConnectGrant(tx: Db, groups: readonly Group[]): Promise<void> {
  const [row] = await tx`
    SELECT current_database() AS db,
           pg_has_role(current_user, d.datdba, 'USAGE') AS may,
           coalesce(array(SELECT g FROM unnest(${[...groups]}::text[]) AS g
             WHERE NOT has_database_privilege(g, current_database(), 'CONNECT')), '{}') AS lacking
    FROM pg_database d WHERE d.datname = current_database()`;
  const lacking = Array.isArray(row?.lacking) ? row.lacking.map(String) : [];
  if (lacking.length === 0 || row?.may !== true) return;
  await tx.unsafe(
    `GRANT CONNECT ON DATABASE ${ident(String(row.db))} TO ${lacking.map(ident).join(", ")}`,
  );
}
