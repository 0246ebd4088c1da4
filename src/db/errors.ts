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
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined; depth++) {
    const code = sqlState(current);
    if (code !== undefined) {
      if (code.startsWith("08") || code.startsWith("57P") || code === SQLSTATE.tooManyConnections)
        return true;
      if (code === SQLSTATE.serializationFailure || code === SQLSTATE.deadlockDetected) return true;
      if (NODE_NETWORK_CODES.has(code)) return true;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/** True when the error says the schema is missing: `harness migrate` has not run. */
export function isMissingMigration(err: unknown): boolean {
  const code = sqlState(err);
  return (
    code === SQLSTATE.undefinedTable ||
    code === SQLSTATE.invalidSchemaName ||
    code === SQLSTATE.undefinedObject
  );
}
