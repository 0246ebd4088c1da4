import postgres from "postgres";
import { failswitch } from "../failpoints";
import { socketsWithoutReconnect } from "./no-reconnect";

export type Sql = postgres.Sql;
/** A pool or a transaction: what every named SQL operation takes. */
export type Db = postgres.ISql;
/** A transaction, for what needs savepoints. */
export type Tx = postgres.TransactionSql;

export interface ConnectOptions {
  /** Pool size; keep in-flight queries at or below it. */
  max?: number;
  /** Shown in pg_stat_activity. */
  name: string;
  /** Seconds an idle connection is kept; 0 keeps it for good (a session lock lives on it). */
  idleTimeout?: number;
  /** Seconds to wait for a connection (default 10). */
  connectTimeout?: number;
  /** Cancels any statement running longer (a read-only dashboard's guard); unset: no limit. */
  statementTimeoutMs?: number;
  /**
   * Plans each prepared statement once (`plan_cache_mode = force_generic_plan`).
   * PostgreSQL otherwise keeps planning anew every run of a statement whose
   * generic plan it costs above its custom ones: the dispatcher's merged
   * statements over `unnest($1::uuid[])`, where planning cost over twice the
   * run (1.05 → 0.30 backend CPU ms per merged claim).
   *
   * Sequential scans are off too (`enable_seqscan`): a plan made once, maybe
   * while a table is nearly empty, must not scan a table that grows. With
   * them on, a merged claim planned at 200 tasks scanned the whole table four
   * times per call (9 ms at 3,200 tasks). Every statement on such a pool
   * reaches its rows by an index (../dispatcher/sql/fence.ts, `amongIds`).
   * JIT is off with them: a statement that must still scan (postgres.js's
   * type lookup at connect, a tiny table) is costed past `jit_above_cost`
   * then, and compiling it cost 200 ms of CPU.
   */
  genericPlans?: boolean;
}

/**
 * Opens a postgres.js pool; notices from IF NOT EXISTS are silenced.
 *
 * `max_pipeline` stays at postgres.js's default. With `max_pipeline: 1`
 * (suggested for steadier throughput) and more callers than connections,
 * `sql.begin` fails with UNSAFE_TRANSACTION: 349 of 1,200 transactions in a
 * test of 8 callers on a pool of 4. Transactions are the fencing, so
 * correctness wins.
 */
export function connect(url: string, opts: ConnectOptions): Sql {
  const options = {
    max: opts.max ?? 10,
    idle_timeout: opts.idleTimeout ?? 30,
    connect_timeout: opts.connectTimeout ?? 10,
    // postgres.js waits 3^n/100 s (up to 20 s) before reconnect n, n shared by the whole
    // pool: after a short database restart, queries then stalled for many seconds. Retry
    // quickly instead, at most a second apart.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    onnotice: () => {},
    connection: {
      application_name: `harness-${opts.name}`,
      ...(opts.statementTimeoutMs === undefined
        ? {}
        : { statement_timeout: opts.statementTimeoutMs }),
      ...(opts.genericPlans === true
        ? { plan_cache_mode: "force_generic_plan", enable_seqscan: "off", jit: "off" }
        : {}),
    },
    socket: failswitch("db.no_reconnect") ? socketsWithoutReconnect() : undefined,
  };
  return postgres(url, options);
}

/** A redacted form of a database URL, for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "(unparseable URL)";
  }
}
