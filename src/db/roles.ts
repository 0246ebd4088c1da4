import * as v from "valibot";
import type { Db } from "./connect";
import { SQLSTATE, sqlState } from "./errors";
import { GROUPS, type Group } from "./grants";
import { ident, literal } from "./quote";

/**
 * The SQL of login users (`harness user add/remove`, `harness up`): each is
 * a member of one harness group (./grants.ts) and holds no privilege of its
 * own, so dropping it never leaves anything behind. CREATE/ALTER/DROP ROLE
 * take no bound parameters: names are checked by `userNameProblem` and
 * quoted, passwords travel as SCRAM verifiers (./scram.ts).
 */

export const USER_ROLES = ["dispatcher", "worker", "sink", "reader"] as const;
export type UserRole = (typeof USER_ROLES)[number];

export const ROLE_GROUP: Record<UserRole, Group> = {
  dispatcher: "harness_dispatcher",
  worker: "harness_worker",
  sink: "harness_sink",
  reader: "harness_reader",
};

const RESERVED = new Set(["public", "none", "current_user", "session_user", "current_role"]);

/** Why `name` cannot be a harness user's name, or undefined when it can. */
export function userNameProblem(name: string): string | undefined {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    return "must be 1 to 63 lower-case letters, digits or _, not starting with a digit";
  if (name.startsWith("pg_")) return "must not start with pg_ (reserved by PostgreSQL)";
  if (RESERVED.has(name)) return "is reserved by PostgreSQL";
  if ((GROUPS as readonly string[]).includes(name)) return "is the name of a harness group role";
  return undefined;
}

const Described = v.object({
  superuser: v.boolean(),
  groups: v.array(v.string()),
});
export interface DescribedUser {
  superuser: boolean;
  /** The harness groups it is a direct member of. */
  groups: Group[];
}

/** The role called `name` on this server, or undefined when there is none. */
export async function userDescribe(
  db: Db,
  p: { name: string },
): Promise<DescribedUser | undefined> {
  const [row] = await db`
    SELECT r.rolsuper AS superuser,
           coalesce(array(
             SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid AND g.rolname = ANY(${[...GROUPS]}::text[])
             ORDER BY 1), '{}') AS groups
    FROM pg_roles r WHERE r.rolname = ${p.name}`;
  if (row === undefined) return undefined;
  const d = v.parse(Described, row);
  return { ...d, groups: GROUPS.filter((g) => d.groups.includes(g)) };
}

/** The groups of `groups` that do not exist on this server. */
export async function groupsMissing(db: Db, groups: readonly Group[]): Promise<Group[]> {
  const rows = await db`SELECT rolname FROM pg_roles WHERE rolname = ANY(${[...groups]}::text[])`;
  const present = new Set(rows.map((r) => String(r.rolname)));
  return groups.filter((g) => !present.has(g));
}

/** A LOGIN user in `groups`, inheriting their privileges and holding none of its own. */
export async function userCreate(
  db: Db,
  p: { name: string; groups: readonly Group[]; verifier: string },
): Promise<void> {
  await db.unsafe(
    `CREATE ROLE ${ident(p.name)} LOGIN INHERIT PASSWORD ${literal(p.verifier)} IN ROLE ${p.groups.map(ident).join(", ")}`,
  );
}

/** A new password for an existing user. */
export async function userSetPassword(
  db: Db,
  p: { name: string; verifier: string },
): Promise<void> {
  await db.unsafe(`ALTER ROLE ${ident(p.name)} LOGIN PASSWORD ${literal(p.verifier)}`);
}

export async function userGrantGroups(
  db: Db,
  p: { name: string; groups: readonly Group[] },
): Promise<void> {
  if (p.groups.length === 0) return;
  await db.unsafe(`GRANT ${p.groups.map(ident).join(", ")} TO ${ident(p.name)}`);
}

export async function userRevokeGroups(
  db: Db,
  p: { name: string; groups: readonly Group[] },
): Promise<void> {
  if (p.groups.length === 0) return;
  await db.unsafe(`REVOKE ${p.groups.map(ident).join(", ")} FROM ${ident(p.name)}`);
}

/**
 * Drops a user: no new logins first, then its open sessions are ended
 * where this user may end them (a superuser, or a member of
 * pg_signal_backend), then the role. Returns the sessions left open.
 */
export async function userDrop(db: Db, p: { name: string }): Promise<{ openSessions: number }> {
  await db.unsafe(`ALTER ROLE ${ident(p.name)} NOLOGIN`);
  const [role] = await db`SELECT oid::text AS oid FROM pg_roles WHERE rolname = ${p.name}`;
  try {
    await db`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = ${p.name}`;
  } catch (err) {
    if (sqlState(err) !== SQLSTATE.insufficientPrivilege) throw err;
  }
  await db.unsafe(`DROP ROLE ${ident(p.name)}`);
  const [open] = await db`
    SELECT count(*)::int AS n FROM pg_stat_activity WHERE usesysid = ${String(role?.oid ?? "0")}::oid`;
  return { openSessions: Number(open?.n ?? 0) };
}
