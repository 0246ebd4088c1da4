import * as v from "valibot";
import type { Db } from "../db/connect";

/**
 * The roles connected to the STATE database now, from `pg_stat_activity`:
 * each role's pool names its sessions `harness-<role>[-<part>]` (see
 * src/db/connect.ts). Sessions, not processes: a dispatcher holds a pool of
 * several. `application_name` is visible to every user, so a read-only
 * database user can run this.
 */

export const ROLES = ["dispatcher", "worker", "sink"] as const;

const Sessions = v.array(v.object({ application_name: v.string(), sessions: v.number() }));

export async function rolesConnected(db: Db): Promise<Array<{ role: string; sessions: number }>> {
  const rows = await db`
    SELECT application_name, count(*)::int AS sessions FROM pg_stat_activity
    WHERE datname = current_database() AND application_name LIKE 'harness-%'
    GROUP BY application_name`;
  const byRole = new Map<string, number>(ROLES.map((r) => [r, 0]));
  for (const r of v.parse(Sessions, [...rows])) {
    const role = r.application_name.slice("harness-".length).split("-")[0] ?? "";
    const known = byRole.get(role);
    if (known !== undefined) byRole.set(role, known + r.sessions);
  }
  return [...byRole].map(([role, sessions]) => ({ role, sessions }));
}
