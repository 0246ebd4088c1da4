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

/** The error and its causes (`new Error(what, { cause })`), outermost first. */
export function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = err;
  while (current !== undefined && chain.length < 8) {
    chain.push(current);
    current = current instanceof Error ? current.cause : undefined;
  }
  return chain;
}

function transientCode(code: string): boolean {
  return (
    code.startsWith("08") ||
    code.startsWith("57P") ||
    code === SQLSTATE.tooManyConnections ||
    code === SQLSTATE.serializationFailure ||
    code === SQLSTATE.deadlockDetected ||
    NODE_NETWORK_CODES.has(code)
  );
}

/** True when the error means the database could not be reached or went away: worth a retry. */
export function isTransientDbError(err: unknown): boolean {
  return causeChain(err).some((e) => {
    const code = sqlState(e);
    return code !== undefined && transientCode(code);
  });
}

/** What every role and command says when the schema is missing. */
export const MISSING_SCHEMA = "the schema is missing: run harness migrate first";

/**
 * True when the error, or any error it wraps (queue and SQL errors wrap their
 * cause), says the schema is missing: `harness migrate` has not run.
 */
export function isMissingMigration(err: unknown): boolean {
  return causeChain(err).some((e) => {
    const code = sqlState(e);
    return (
      code === SQLSTATE.undefinedTable ||
      code === SQLSTATE.invalidSchemaName ||
      code === SQLSTATE.undefinedObject
    );
  });
}

/**
 * True when the database refused the values themselves (class 22, data
 * exception, or 54000, a program limit such as a row too large): the same
 * statement with the same values fails again, however often it is retried.
 */
export function isDataException(err: unknown): boolean {
  return causeChain(err).some((e) => {
    const code = sqlState(e);
    return code !== undefined && (code.startsWith("22") || code === "54000");
  });
}
