import * as v from "valibot";
import { connect, type Sql } from "../db/connect";

/**
 * `harness verify` needs the queues of its database to itself: another
 * pipeline's roles would take its tasks and messages, and when verify keeps
 * its objects in a private temporary store, nobody else can read them — the
 * other sink dead-letters verify's batches and the run never goes quiet.
 * So a run holds a session advisory lock on the STATE database for its whole
 * length, and with a private store it also refuses to start while roles of
 * another pipeline are connected.
 */

/** Beside the migration (72_617_001/2) and signing-key (72_617_101) locks. */
const VERIFY_LOCK_KEY = 72_617_201;

/** The application names of the role processes' pools (connect() prefixes "harness-"). */
const ROLE_APPLICATION_NAMES = ["harness-dispatcher", "harness-worker", "harness-sink-state"];

export class DatabaseBusyError extends Error {
  override name = "DatabaseBusyError";
}

async function tryVerifyLock(sql: Sql): Promise<boolean> {
  const [row] = await sql`SELECT pg_try_advisory_lock(${VERIFY_LOCK_KEY}) AS locked`;
  return v.parse(v.object({ locked: v.boolean() }), row).locked;
}

const RoleSessions = v.array(v.object({ application_name: v.string(), sessions: v.number() }));

async function connectedRoleSessions(sql: Sql): Promise<v.InferOutput<typeof RoleSessions>> {
  const rows = await sql`
    SELECT application_name, count(*)::int AS sessions FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = ANY(${ROLE_APPLICATION_NAMES})
    GROUP BY application_name ORDER BY application_name`;
  return v.parse(RoleSessions, [...rows]);
}

/**
 * Role sessions still connected after a short grace: the backends of roles
 * that just exited (a previous run's) disappear within it, a live pipeline's
 * do not.
 */
async function lingeringRoleSessions(sql: Sql): Promise<v.InferOutput<typeof RoleSessions>> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const sessions = await connectedRoleSessions(sql);
    if (sessions.length === 0 || Date.now() > deadline) return sessions;
    await Bun.sleep(100);
  }
}

/**
 * Claims the STATE database for one verify run; the returned function gives
 * it back. Throws DatabaseBusyError, naming what holds it, when it cannot.
 */
export async function claimDatabase(
  url: string,
  o: { privateStore: boolean },
): Promise<() => Promise<void>> {
  const sql = connect(url, { name: "verify-lock", max: 1, idleTimeout: 0 });
  try {
    if (!(await tryVerifyLock(sql)))
      throw new DatabaseBusyError("another harness verify is running against this database");
    const others = o.privateStore ? await lingeringRoleSessions(sql) : [];
    if (others.length > 0) {
      const list = others.map((r) => `${r.application_name} ×${r.sessions}`).join(", ");
      throw new DatabaseBusyError(
        `roles of another pipeline are connected to this database (${list}); they would take ` +
          "verify's tasks and cannot read its private object store: stop them, or set " +
          "OBJECT_STORE_URL to the store they use",
      );
    }
  } catch (err) {
    await sql.end();
    throw err;
  }
  // Ending the connection ends the session, and the lock with it.
  return () => sql.end();
}
