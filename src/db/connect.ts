import postgres from "postgres";

export type Sql = postgres.Sql;
/** A pool or a transaction: what every named SQL operation takes. */
export type Db = postgres.ISql;

export interface ConnectOptions {
  /** Pool size; keep in-flight queries at or below it. */
  max?: number;
  /** Shown in pg_stat_activity. */
  name: string;
}

/**
 * Opens a postgres.js pool. `max_pipeline: 1` keeps throughput steady on a
 * long-lived process (FACTS.md); notices from IF NOT EXISTS are silenced.
 */
export function connect(url: string, opts: ConnectOptions): Sql {
  // `max_pipeline` is a real postgres.js option its type definitions leave out, hence the
  // variable (no excess-property check) rather than an inline literal.
  const options = {
    max: opts.max ?? 10,
    max_pipeline: 1,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: `harness-${opts.name}` },
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
