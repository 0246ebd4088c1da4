import { connect, type Sql } from "../../src/db/connect";
import { sqlState } from "../../src/db/errors";
import { waitFor } from "../../test/support/wait";

/**
 * Statements and commits a run costs its database, per task: deltas of
 * `pg_stat_statements` (sum of `calls`, restricted to the run's database by
 * dbid, read before it is dropped; BEGIN/COMMIT, LISTEN and the like count
 * too, as the server's default `track_utility` has it) and of
 * `pg_stat_database.xact_commit` (always there). xact_commit counts every
 * transaction ended, read-only ones too: a plain SELECT, a backend's
 * start-up, a listening backend reading a NOTIFY (without an xid, those
 * never wait for a WAL flush).
 *
 * PostgreSQL 15 keeps a backend's counts in the backend until it flushes
 * them: at most once a second while busy, within 10 s once idle, always at
 * exit. So the first snapshot is taken before the run's processes start and
 * the last once they have all stopped and their backends are gone: the
 * figures cover the roles' start-up and shut-down too (a few dozen
 * statements in all, nothing per task).
 *
 * The bench's own statements on the database (its progress polls, the CPU
 * meter's backend look-ups, the counter's) are counted (`run`) and taken
 * off both: each is one statement in a transaction of its own.
 *
 * pg_stat_statements is server-wide and shared with other databases; it is
 * never reset here (a reset would disturb other runs on the same server).
 * If it evicted entries during the run (`pg_stat_statements_info.dealloc`
 * moved), its delta is unreliable and reported as NaN.
 *
 *   const counter = await PgCounter.open(url);      // before any role starts
 *   … run; the bench's own statements through counter.run(() => sql`…`) …
 *   … stop every role, end every other pool on the database …
 *   Object.assign(extra, await counter.finish(tasks));
 */

interface Snapshot {
  commits: number;
  /** Sum of calls of the database's statements; undefined without pg_stat_statements. */
  statements: number | undefined;
  /** pg_stat_statements_info.dealloc: entries evicted so far. */
  dealloc: number | undefined;
}

/** The per-task figures for a subject's `extra`. */
export interface PgPerTask extends Record<string, number> {
  /** NaN without pg_stat_statements, or if it evicted entries meanwhile. */
  statements_per_task: number;
  commits_per_task: number;
  /** 1 when the server has pg_stat_statements. */
  pg_stat_statements: number;
  /** 1 when it evicted entries during the run. */
  pg_stat_statements_evicted: number;
}

const num = (x: unknown) => (typeof x === "number" ? x : undefined);

export function pgPerTask(before: Snapshot, after: Snapshot, own: number, items: number) {
  const has = before.statements !== undefined && after.statements !== undefined;
  const evicted = has && before.dealloc !== after.dealloc;
  const statements =
    has && !evicted
      ? ((after.statements ?? 0) - (before.statements ?? 0) - own) / items
      : Number.NaN;
  return {
    statements_per_task: statements,
    commits_per_task: (after.commits - before.commits - own) / items,
    pg_stat_statements: has ? 1 : 0,
    pg_stat_statements_evicted: evicted ? 1 : 0,
  } satisfies PgPerTask;
}

export class PgCounter {
  /** The bench's own statements on the database since the first snapshot (that one included). */
  own = 0;

  private constructor(
    private readonly sql: Sql,
    private readonly statements: boolean,
    private readonly before: Snapshot,
  ) {}

  /** Connects (a session of its own, `harness-bench-pgstats`) and takes the first snapshot. */
  static async open(url: string): Promise<PgCounter> {
    const sql = connect(url, { name: "bench-pgstats", max: 1 });
    try {
      const statements = await statementsAvailable(sql);
      // The statements above are this session's too: flushed before the snapshot.
      await flushOwn(sql);
      const before = await snapshot(sql, statements);
      const counter = new PgCounter(sql, statements, before);
      counter.own = 1;
      return counter;
    } catch (cause) {
      await sql.end({ timeout: 1 });
      throw new Error("taking the first statistics snapshot", { cause });
    }
  }

  /** Runs `q`, one statement of the bench's on the database, counted. */
  async run<T>(q: () => Promise<T>): Promise<T> {
    this.own++;
    return q();
  }

  /**
   * Once every other session on the database has ended: the figures per
   * task. Waits for their backends to be gone (each has flushed its counts
   * on its way out), then has this session's own counts flushed.
   */
  async finish(items: number): Promise<PgPerTask> {
    const sql = this.sql;
    await waitFor(
      async () => {
        const [r] = await this.run(
          () => sql`
            SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        );
        return Number(r?.n) === 0;
      },
      {
        what: "every other session on the bench database to end",
        timeoutMs: 30_000,
        intervalMs: 20,
      },
    );
    await this.run(() => flushOwn(sql));
    const after = await snapshot(sql, this.statements);
    return pgPerTask(this.before, after, this.own, items);
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 1 });
  }
}

/** The idle backend's flush comes within this (PGSTAT_IDLE_INTERVAL) on a server without pg_stat_force_next_flush. */
const IDLE_FLUSH_MS = 11_000;
const UNDEFINED_FUNCTION = "42883";

/**
 * Has this session's pending counts flushed: PostgreSQL 15's
 * pg_stat_force_next_flush (done before the server answers the statement);
 * on an older server, by waiting for the idle flush.
 */
async function flushOwn(sql: Sql): Promise<void> {
  try {
    await sql`SELECT pg_stat_force_next_flush()`;
  } catch (err) {
    if (sqlState(err) !== UNDEFINED_FUNCTION) throw err;
    await Bun.sleep(IDLE_FLUSH_MS);
  }
}

/**
 * Makes pg_stat_statements readable from the run's database when the server
 * preloads it (CREATE EXTENSION in that database, which the bench drops
 * afterwards). False when the server does not have it (or refuses).
 */
async function statementsAvailable(sql: Sql): Promise<boolean> {
  const [r] = await sql`
    SELECT 'pg_stat_statements' = ANY (string_to_array(
             replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS loaded`;
  if (r?.loaded !== true) return false;
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    return true;
  } catch {
    return false;
  }
}

/** One snapshot, in one statement. */
async function snapshot(sql: Sql, statements: boolean): Promise<Snapshot> {
  const [r] = statements
    ? await sql`
        SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS commits,
               (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))::float8 AS statements,
               (SELECT dealloc FROM pg_stat_statements_info)::float8 AS dealloc`
    : await sql`
        SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8 AS commits`;
  return {
    commits: num(r?.commits) ?? Number.NaN,
    statements: num(r?.statements),
    dealloc: num(r?.dealloc),
  };
}
