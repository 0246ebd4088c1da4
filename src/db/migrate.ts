import type { Sql } from "./connect";
import { privilegesApply } from "./grants";
import { embeddedMigrations } from "./migrations.macro" with { type: "macro" };
import type { EmbeddedMigration } from "./migrations.macro";

/**
 * Applies the embedded drizzle-kit migrations of one database. drizzle's own
 * migrator reads files at run time and takes no lock, so this one runs on
 * data inlined at build time, under a transaction-scoped advisory lock:
 * two `harness migrate` at once serialize, and the second applies nothing.
 * Every run ends by setting the harness group roles' privileges in the
 * set's schema to exactly ./grants.ts, in the same transaction.
 */

export type MigrationSet = "state" | "data";

const MIGRATIONS: Record<MigrationSet, EmbeddedMigration[]> = {
  state: embeddedMigrations("state"),
  data: embeddedMigrations("data"),
};

// One key per set, so state and data on the same database do not wait on each other needlessly.
const LOCK_KEYS: Record<MigrationSet, number> = { state: 72_617_001, data: 72_617_002 };

export function migrationsOf(set: MigrationSet): readonly EmbeddedMigration[] {
  return MIGRATIONS[set];
}

export async function migrateDatabase(sql: Sql, set: MigrationSet): Promise<string[]> {
  const table = `__migrations_${set}`;
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_KEYS[set]})`;
    await tx`CREATE SCHEMA IF NOT EXISTS drizzle`;
    await tx`CREATE TABLE IF NOT EXISTS drizzle.${tx(table)} (
      id serial PRIMARY KEY,
      tag text NOT NULL UNIQUE,
      hash text NOT NULL,
      created_at bigint NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    const rows = await tx`SELECT tag FROM drizzle.${tx(table)}`;
    const done = new Set(rows.map((r) => String(r.tag)));
    const applied: string[] = [];
    for (const migration of MIGRATIONS[set]) {
      if (done.has(migration.tag)) continue;
      for (const statement of migration.statements) {
        await tx.unsafe(statement);
      }
      await tx`INSERT INTO drizzle.${tx(table)} (tag, hash, created_at)
        VALUES (${migration.tag}, ${migration.hash}, ${migration.when})`;
      applied.push(migration.tag);
    }
    await privilegesApply(tx, set);
    return applied;
  });
}
