import { connect, describeUrl, type Sql } from "../db/connect";
import { SQLSTATE, sqlState } from "../db/errors";
import type { Group } from "../db/grants";
import {
  groupsMissing,
  ROLE_GROUP,
  type UserRole,
  userCreate,
  userDescribe,
  userDrop,
  userGrantGroups,
  userRevokeGroups,
  userSetPassword,
} from "../db/roles";
import { newPassword, scramVerifier } from "../db/scram";

/**
 * `harness user add/remove` and `harness up`: login users made with the
 * owner's URLs, and the URLs each role then connects with. Roles are
 * cluster-wide: a user that needs both databases is made on both servers
 * (once when they are one server: the second pass finds it there and sets
 * the same password again).
 */

export interface OwnerUrls {
  state: string;
  data: string;
}

export interface UserRequest {
  name: string;
  role: UserRole;
  /** Reader only: also a member of harness_redriver (`dlq redrive`, the dashboard's redrive). */
  redrive?: boolean;
  /** When the user exists: a new password instead of a refusal. */
  rotate?: boolean;
}

/** What `user add` prints: one `KEY=URL` per variable the role needs. */
export type RoleUrls = { STATE_DATABASE_URL: string; DATA_DATABASE_URL?: string };

export class UserExistsError extends Error {
  override name = "UserExistsError";
}

/** Roles that read the DATA database. */
const NEEDS_DATA: readonly UserRole[] = ["sink", "reader"];

function groupsOf(req: UserRequest): Group[] {
  const groups: Group[] = [ROLE_GROUP[req.role]];
  if (req.redrive === true) groups.push("harness_redriver");
  return groups;
}

/** The owner's URL with another user and password (host, database and options kept). */
export function urlAs(ownerUrl: string, user: string, password: string): string {
  const u = new URL(ownerUrl);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

async function onServer<T>(url: string, work: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = connect(url, { name: "user", max: 1 });
  try {
    return await work(sql);
  } catch (cause) {
    if (cause instanceof UserExistsError) throw cause;
    throw new Error(`on the database at ${describeUrl(url)}`, { cause });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Creates the user on one server, or (when `mayExist`) gives the existing one
 * the new password and exactly the groups asked for; refuses a role that is
 * not a harness user, or a user of another role.
 */
async function userEnsure(
  sql: Sql,
  req: UserRequest,
  verifier: string,
  mayExist: boolean,
): Promise<void> {
  const wanted = groupsOf(req);
  const missing = await groupsMissing(sql, wanted);
  if (missing.length > 0)
    throw new Error(
      `the group role ${missing.join(", ")} does not exist: run harness migrate first`,
    );
  return sql.begin(async (tx) => {
    const found = await userDescribe(tx, { name: req.name });
    if (found === undefined) {
      try {
        await userCreate(tx, { name: req.name, groups: wanted, verifier });
        return;
      } catch (err) {
        if (sqlState(err) === SQLSTATE.duplicateObject) throw exists(req);
        throw err;
      }
    }
    const role = ROLE_GROUP[req.role];
    if (found.superuser || !found.groups.some((g) => g !== "harness_redriver"))
      throw new Error(`the role ${req.name} exists and is not a harness user: choose another name`);
    if (!found.groups.includes(role))
      throw new Error(
        `user ${req.name} exists in ${found.groups.join(", ")}, not ${role}: remove it first`,
      );
    if (!mayExist) throw exists(req);
    await userSetPassword(tx, { name: req.name, verifier });
    await userGrantGroups(tx, {
      name: req.name,
      groups: wanted.filter((g) => !found.groups.includes(g)),
    });
    await userRevokeGroups(tx, {
      name: req.name,
      groups: found.groups.filter((g) => !wanted.includes(g)),
    });
  });
}

function exists(req: UserRequest): UserExistsError {
  return new UserExistsError(
    `user ${req.name} already exists: pass --rotate to give it a new password, or harness user remove ${req.name}`,
  );
}

/** Makes (or, with `rotate`, re-keys) a user; returns the URLs its role needs. */
export async function userAdd(owner: OwnerUrls, req: UserRequest): Promise<RoleUrls> {
  const password = newPassword();
  const verifier = scramVerifier(password);
  await onServer(owner.state, (sql) => userEnsure(sql, req, verifier, req.rotate === true));
  const urls: RoleUrls = { STATE_DATABASE_URL: urlAs(owner.state, req.name, password) };
  if (NEEDS_DATA.includes(req.role)) {
    if (owner.data !== owner.state) {
      await onServer(owner.data, (sql) => userEnsure(sql, req, verifier, true));
    }
    urls.DATA_DATABASE_URL = urlAs(owner.data, req.name, password);
  }
  return urls;
}

/** Drops the user on both servers; refuses a role that is not a harness user. */
export async function userRemove(
  owner: OwnerUrls,
  name: string,
): Promise<{ removed: boolean; openSessions: number }> {
  let removed = false;
  let openSessions = 0;
  for (const url of new Set([owner.state, owner.data])) {
    await onServer(url, async (sql) => {
      const found = await userDescribe(sql, { name });
      if (found === undefined) return;
      if (found.superuser || found.groups.length === 0)
        throw new Error(
          `the role ${name} is not a harness user: harness user remove leaves it alone`,
        );
      const r = await userDrop(sql, { name });
      removed = true;
      openSessions += r.openSessions;
    });
  }
  return { removed, openSessions };
}
