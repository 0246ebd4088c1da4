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
  duplicateObject: "42710",
  insufficientPrivilege: "42501",
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

/** The error, its cause, its cause's cause… (at most eight), outermost first. */
export function* errorChain(err: unknown): Generator<unknown> {
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current !== undefined; depth++) {
    yield current;
    current = current instanceof Error ? current.cause : undefined;
  }
}

const some = (err: unknown, test: (e: unknown) => boolean): boolean => {
  for (const e of errorChain(err)) if (test(e)) return true;
  return false;
};

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
  return some(err, (e) => {
    const code = sqlState(e);
    return code !== undefined && transientCode(code);
  });
}

/** What every role and command says when the schema is missing. */
export const MISSING_SCHEMA = "the schema is missing: run harness migrate first";

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

/** True when the error, or any error it wraps (queue and SQL errors wrap their cause), says the schema is missing. */
export function isMissingMigration(err: unknown): boolean {
  return missingMigrationError(err) !== undefined;
}

/**
 * True when the database refused the values themselves (class 22, data
 * exception, or 54000, a program limit such as a row too large): the same
 * statement with the same values fails again, however often it is retried.
 */
export function isDataException(err: unknown): boolean {
  return some(err, (e) => {
    const code = sqlState(e);
    return code !== undefined && (code.startsWith("22") || code === "54000");
  });
}
