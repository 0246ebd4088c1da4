import { connect } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";

/**
 * The PostgreSQL the benchmarks run on: BENCH_DATABASE_URL, or an embedded
 * one started for the run. Each subject gets a database of its own per round
 * (a clone of a migrated template for ours), dropped right after.
 */

export interface BenchServer {
  /** Where it runs, for the report (no credentials). */
  where: string;
  embedded: boolean;
  version: string;
  /** Settings that move the figures (fsync, synchronous_commit...). */
  settings: Record<string, string>;
  /** Creates a database for one subject run; "state" ones are migrated like the product's. */
  createDatabase(
    kind: "state" | "empty",
    label: string,
  ): Promise<{ url: string; drop(): Promise<void> }>;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function adminDo<T>(admin: string, fn: (sql: ReturnType<typeof connect>) => Promise<T>) {
  const sql = connect(admin, { name: "bench-admin", max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function openServer(): Promise<BenchServer> {
  const given = process.env.BENCH_DATABASE_URL;
  let admin: string;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (given !== undefined && given !== "") {
    admin = given;
  } else {
    const { startEmbeddedServer } = await import("../../test/support/embedded");
    const server = await startEmbeddedServer();
    admin = server.url();
    stopEmbedded = () => server.destroy();
  }
  const runId = `${Date.now().toString(36)}_${process.pid}`;
  const template = `bench_tpl_${runId}`;
  const info = await adminDo(admin, async (sql) => {
    const [v] = await sql`SELECT current_setting('server_version') AS v`;
    const rows = await sql`
      SELECT name, setting FROM pg_settings
      WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')`;
    await sql`CREATE DATABASE ${sql(template)}`;
    return {
      version: String(v?.v ?? "?"),
      settings: Object.fromEntries(rows.map((r) => [String(r.name), String(r.setting)])),
    };
  });
  const tpl = connect(withDatabase(admin, template), { name: "bench-template", max: 1 });
  try {
    await migrateDatabase(tpl, "state");
    await migrateDatabase(tpl, "data");
  } finally {
    await tpl.end({ timeout: 1 });
  }

  let n = 0;
  const u = new URL(admin);
  return {
    where: `${u.hostname}:${u.port || "5432"}`,
    embedded: stopEmbedded !== undefined,
    version: info.version,
    settings: info.settings,
    async createDatabase(kind, label) {
      n++;
      const name = `bench_${runId}_${n}_${label.replace(/[^a-z0-9]/gi, "_")}`.slice(0, 63);
      await adminDo(admin, (sql) =>
        kind === "state"
          ? sql`CREATE DATABASE ${sql(name)} TEMPLATE ${sql(template)}`
          : sql`CREATE DATABASE ${sql(name)}`,
      );
      return {
        url: withDatabase(admin, name),
        async drop() {
          await adminDo(admin, (sql) => sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`);
        },
      };
    },
    async close() {
      await adminDo(admin, (sql) => sql`DROP DATABASE IF EXISTS ${sql(template)} WITH (FORCE)`);
      await stopEmbedded?.();
    },
  };
}
