import { afterAll, beforeAll } from "bun:test";
import { connect, type Sql } from "../../src/db/connect";
import { migrateDatabase } from "../../src/db/migrate";
import { PgQueue } from "../../src/queue/pg/backend";
import { type EmbeddedServer, startEmbeddedServer } from "./embedded";

/**
 * One PostgreSQL per test run (TEST_DATABASE_URL, or an embedded one), one
 * migrated template per run, and one fresh database cloned from it per test file.
 */

let server: Promise<{ admin: string; embedded?: EmbeddedServer }> | undefined;
let template: Promise<string> | undefined;
const runId = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function startServer(): Promise<{ admin: string; embedded?: EmbeddedServer }> {
  const given = process.env.TEST_DATABASE_URL;
  if (given !== undefined && given !== "") return { admin: given };
  const embedded = await startEmbeddedServer();
  return { admin: embedded.url(), embedded };
}

export function testServer(): Promise<{ admin: string; embedded?: EmbeddedServer }> {
  server ??= startServer();
  return server;
}

async function createTemplate(): Promise<string> {
  const { admin } = await testServer();
  const name = `harness_tpl_${runId}`;
  const sql = connect(admin, { name: "test-admin", max: 1 });
  try {
    await sql`CREATE DATABASE ${sql(name)}`;
  } finally {
    await sql.end();
  }
  const tpl = connect(withDatabase(admin, name), { name: "test-template", max: 1 });
  try {
    await migrateDatabase(tpl, "state");
    await migrateDatabase(tpl, "data");
  } finally {
    await tpl.end();
  }
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A small pool on the database, closed by `drop`. */
  sql: Sql;
  /** pgqueue on this database (opened on first use, closed by `drop`): publish, admin, consumers. */
  queue(): PgQueue;
  drop(): Promise<void>;
}

/** A freshly migrated database of its own (a clone of the run's template). */
export async function freshDatabase(): Promise<TestDatabase> {
  template ??= createTemplate();
  const tpl = await template;
  const { admin } = await testServer();
  const name = `harness_t_${runId}_${Math.random().toString(36).slice(2, 8)}`;
  const adminSql = connect(admin, { name: "test-admin", max: 1 });
  try {
    await adminSql`CREATE DATABASE ${adminSql(name)} TEMPLATE ${adminSql(tpl)} STRATEGY FILE_COPY`;
  } finally {
    await adminSql.end();
  }
  const url = withDatabase(admin, name);
  return testDatabase(name, url, connect(url, { name: "test", max: 4 }), async () => {
    const a = connect(admin, { name: "test-admin", max: 1 });
    try {
      await a`DROP DATABASE IF EXISTS ${a(name)} WITH (FORCE)`;
    } finally {
      await a.end();
    }
  });
}

/** A database a test made itself, on its pool; `drop` closes queue and pool, then runs `after`. */
export function testDatabase(
  name: string,
  url: string,
  sql: Sql,
  after: () => Promise<void> = async () => {},
): TestDatabase {
  let queue: PgQueue | undefined;
  return {
    name,
    url,
    sql,
    queue() {
      queue ??= PgQueue.open(url, { name: "test-queue" });
      return queue;
    },
    async drop() {
      await queue?.close();
      await sql.end({ timeout: 1 });
      await after();
    },
  };
}

/** Registers a fresh database for this test file: created before its tests, dropped after. */
export function useFreshDatabase(): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  return () => {
    if (db === undefined) throw new Error("the fresh database is only there inside tests");
    return db;
  };
}

/** Called once at the end of the run (test/support/preload.ts). */
export async function teardownTestServer(): Promise<void> {
  if (server === undefined) return;
  const { admin, embedded } = await server;
  if (template !== undefined) {
    const name = await template.catch(() => undefined);
    if (name !== undefined) {
      const a = connect(admin, { name: "test-admin", max: 1 });
      await a`DROP DATABASE IF EXISTS ${a(name)} WITH (FORCE)`.catch(() => {});
      await a.end();
    }
  }
  await embedded?.destroy();
}
