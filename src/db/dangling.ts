import { createLogger } from "../log";
import { isTransientDbError } from "./errors";

/**
 * When the database goes away mid-query, postgres.js 3.4.9 can reject an
 * internal promise that nobody awaits (its callers got their own error), and
 * an unhandled rejection ends a Bun process. Every role retries its database
 * work on its own, so such a connection error is logged and dropped; any
 * other unhandled rejection still ends the process, as before.
 */

const log = createLogger("db");

process.on("unhandledRejection", (reason: unknown) => {
  if (isTransientDbError(reason)) {
    log.warn("dropped a database connection error that nothing awaited", { err: reason });
    return;
  }
  throw reason;
});
