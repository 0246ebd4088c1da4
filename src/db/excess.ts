import * as v from "valibot";
import type { Db } from "./connect";
import { GROUPS, type Group } from "./grants";

/**
 * What this connection may do beyond its role (one query, run by a role as
 * it starts): a superuser, the owner of the schema (or a member of the
 * owner), a member of another harness group, or a holder of a privilege its
 * role never has — reading tasks, outbox rows or signing keys for the worker
 * and the sink, anything in `data` for the dispatcher and the worker.
 */

export type CheckedRole = "dispatcher" | "worker" | "sink";

const OWN_GROUP: Record<CheckedRole, Group> = {
  dispatcher: "harness_dispatcher",
  worker: "harness_worker",
  sink: "harness_sink",
};

/** Tables a role must not read, whatever the route to them. */
const UNREADABLE: Record<CheckedRole, readonly string[]> = {
  dispatcher: ["data.alert_events", "data.sink_batches"],
  worker: [
    "state.tasks",
    "state.signing_keys",
    "state.outbox",
    "state.task_attempts",
    "data.alert_events",
    "data.sink_batches",
  ],
  sink: ["state.tasks", "state.signing_keys", "state.outbox", "state.task_attempts"],
};

/** Tables a role must not change beyond inserting (the sink: its rows are never rewritten). */
const APPEND_ONLY: Record<CheckedRole, readonly string[]> = {
  dispatcher: [],
  worker: [],
  sink: ["data.alert_events", "data.sink_batches"],
};

const Row = v.object({
  user: v.string(),
  superuser: v.boolean(),
  owns: v.array(v.string()),
  groups: v.array(v.string()),
  readable: v.array(v.string()),
  rewritable: v.array(v.string()),
});

export async function connectionExcess(db: Db, p: { role: CheckedRole }): Promise<string[]> {
  const others = GROUPS.filter((g) => g !== OWN_GROUP[p.role]);
  // By oid, never by name: a name lookup in a schema without USAGE is itself refused.
  const [row] = await db`
    WITH tables AS (
      SELECT c.oid, n.nspname || '.' || c.relname AS name,
             has_schema_privilege(n.oid, 'USAGE') AS usable
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('state', 'data') AND c.relkind IN ('r', 'p', 'v', 'm')
    )
    SELECT current_user::text AS user,
           (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
           coalesce(array(SELECT n.nspname::text FROM pg_namespace n
             WHERE n.nspname IN ('state', 'data') AND pg_has_role(current_user, n.nspowner, 'USAGE')
             ORDER BY 1), '{}') AS owns,
           coalesce(array(SELECT g FROM unnest(${others}::text[]) AS g
             WHERE to_regrole(g) IS NOT NULL AND pg_has_role(current_user, g::regrole, 'USAGE')
             ORDER BY 1), '{}') AS groups,
           coalesce(array(SELECT t.name FROM tables t
             WHERE t.name = ANY(${[...UNREADABLE[p.role]]}::text[]) AND t.usable
               AND (has_table_privilege(t.oid, 'SELECT') OR has_any_column_privilege(t.oid, 'SELECT'))
             ORDER BY 1), '{}') AS readable,
           coalesce(array(SELECT t.name FROM tables t
             WHERE t.name = ANY(${[...APPEND_ONLY[p.role]]}::text[]) AND t.usable
               AND has_table_privilege(t.oid, 'UPDATE, DELETE, TRUNCATE')
             ORDER BY 1), '{}') AS rewritable`;
  const r = v.parse(Row, row);
  if (r.superuser) return [`connected as the superuser ${r.user}`];
  if (r.owns.length > 0)
    return [`connected as ${r.user}, the owner of schema ${r.owns.join(", ")}`];
  const found: string[] = [];
  if (r.groups.length > 0) found.push(`${r.user} is a member of ${r.groups.join(", ")}`);
  if (r.readable.length > 0) found.push(`${r.user} may read ${r.readable.join(", ")}`);
  if (r.rewritable.length > 0)
    found.push(`${r.user} may update or delete ${r.rewritable.join(", ")}`);
  return found;
}
