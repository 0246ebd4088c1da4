/**
 * PostgreSQL SQLSTATE codes we branch on. Never match on message text.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const SQLSTATE = {
  uniqueViolation: "23505",
  serializationFailure: "40001",
  deadlockDetected: "40P01",
  adminShutdown: "57P01",
  crashShutdown: "57P02",
  cannotConnectNow: "57P03",
  invalidCatalogName: "3D000",
  undefinedTable: "42P01",
  undefinedObject: "42704",
  invalidSchemaName: "3F000",
  connectionException: "08000",
  connectionDoesNotExist: "08003",
  connectionFailure: "08006",
  sqlClientUnableToEstablishSqlconnection: "08001",
  tooManyConnections: "53300",
} as const;

export function sqlState(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

const NODE_NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/** True when the error means the database could not be reached or went away: worth a retry. */
export function isTransientDbError(err: unknown): boolean {
  for (const e of errorChain(err)) {
    const code = sqlState(e);
    if (code === undefined) continue;
    if (code.startsWith("08") || code.startsWith("57P") || code === SQLSTATE.tooManyConnections)
      return true;
    if (code === SQLSTATE.serializationFailure || code === SQLSTATE.deadlockDetected) return true;
    if (NODE_NETWORK_CODES.has(code)) return true;
  }
  return false;
}

/** The error, its cause, its cause's cause… (at most five). */
export function* errorChain(err: unknown): Generator<unknown> {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined; depth++) {
    yield current;
    current = current instanceof Error ? current.cause : undefined;
  }
}

const MISSING_OBJECT = new Set<string>([
  SQLSTATE.undefinedTable,
  SQLSTATE.invalidSchemaName,
  SQLSTATE.undefinedObject,
]);

/** The PostgreSQL error in the chain saying the schema is missing (`harness migrate` has not run), if any. */
export function missingMigrationError(err: unknown): Error | undefined {
  for (const e of errorChain(err)) {
    const code = sqlState(e);
    if (code !== undefined && MISSING_OBJECT.has(code) && e instanceof Error) return e;
  }
  return undefined;
}

/** True when the error, or one of its causes, says the schema is missing. */
export function isMissingMigration(err: unknown): boolean {
  return missingMigrationError(err) !== undefined;
}
