import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";
import * as v from "valibot";
import { connect, describeUrl } from "./connect";
import { alertEvents } from "./data";
import { isTransientDbError, MISSING_SCHEMA } from "./errors";
import { outbox, queueMessages, tasks } from "./state";

/**
 * Before a command starts work: can its database be reached at all (within
 * a short deadline, naming the database), and has `harness migrate` made
 * the tables it needs there? Catalog queries only, so any role may ask.
 */

export type DatabaseKind = "state" | "data";

export class DatabaseUnreachableError extends Error {
  override name = "DatabaseUnreachableError";
}

export class MissingSchemaError extends Error {
  override name = "MissingSchemaError";
}

const NEEDED: Record<DatabaseKind, PgTable[]> = {
  state: [tasks, outbox, queueMessages],
  data: [alertEvents],
};

function qualified(table: PgTable): string {
  const { schema, name } = getTableConfig(table);
  return `${schema ?? "public"}.${name}`;
}

class NoAnswer extends Error {
  override name = "NoAnswer";
}

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswer(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const Present = v.array(v.object({ name: v.string() }));

export async function checkDatabase(
  url: string,
  kind: DatabaseKind,
  options: { schema: boolean; timeoutMs: number },
): Promise<void> {
  const where = `the ${kind} database at ${describeUrl(url)}`;
  const sql = connect(url, {
    name: "preflight",
    max: 1,
    connectTimeout: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
  });
  const wanted = NEEDED[kind].map(qualified);
  try {
    const rows = v.parse(
      Present,
      await withDeadline(
        sql`SELECT n.nspname || '.' || c.relname AS name
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname || '.' || c.relname = ANY(${wanted}::text[])`,
        options.timeoutMs,
      ),
    );
    const missing = wanted.filter((t) => !rows.some((r) => r.name === t));
    if (options.schema && missing.length > 0) {
      throw new MissingSchemaError(`${MISSING_SCHEMA} (${where} has no ${missing.join(", ")})`);
    }
  } catch (err) {
    if (err instanceof MissingSchemaError) throw err;
    if (err instanceof NoAnswer || isTransientDbError(err)) {
      throw new DatabaseUnreachableError(`cannot reach ${where}`, { cause: err });
    }
    throw new Error(`connecting to ${where}`, { cause: err });
  } finally {
    await sql.end({ timeout: 0 });
  }
}
