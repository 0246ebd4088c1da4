import type { BufferMessage } from "../contracts/queue";
import { isMissingMigration, isTransientDbError, MISSING_SCHEMA, sqlState } from "../db/errors";
import { describeError } from "../describe-error";
import { ObjectNotFoundError, ObjectSymlinkError, ObjectTooLargeError } from "../objectstore";

/**
 * Every rule that decides whether a failed batch is poison (dead-lettered at
 * once: it can never succeed) or transient (left to come back after the
 * visibility timeout; the queue dead-letters it after MAX_RECEIVES). Either
 * way no row of it is written. One function per rule, each tested in
 * test/sink/failure.test.ts.
 *
 * A reason names the line, the field and the rule, never bytes of the batch
 * (no parser message, no received value, no database message that may quote
 * one): it goes to the logs and `dlq list`, and a batch may hold anything.
 */

/** `poison`: dead-letter now. `retry`: leave it for redelivery after the visibility timeout. */
export type Failure = { kind: "poison"; reason: string } | { kind: "retry"; reason: string };

const poison = (reason: string): Failure => ({ kind: "poison", reason });
const retry = (reason: string): Failure => ({ kind: "retry", reason });

/** The URI is not under `<store>/<org_id>/<task_id>/` of the message: never fetched. */
export const outsideItsFolder = (root: string, m: BufferMessage): Failure =>
  poison(`batch_uri ${JSON.stringify(m.batch_uri)} is not under ${root}/${m.org_id}/${m.task_id}/`);

/** The message claims more than MAX_BATCH_BYTES: never fetched. */
export const claimOverCap = (claimed: number, cap: number): Failure =>
  poison(`batch_size_bytes ${claimed} is over the ${cap} byte cap`);

/** The object's size is not the size the message claims (checked before reading). */
export const sizeMismatch = (size: number, claimed: number): Failure =>
  poison(`batch is ${size} bytes, the message claims ${claimed}`);

/** The bytes read were not as many as claimed: the object changed while it was read. */
export const readMismatch = (read: number, claimed: number): Failure =>
  poison(
    read > claimed
      ? `batch grew past the claimed ${claimed} bytes while read`
      : `batch read ${read} bytes, the message claims ${claimed}`,
  );

/**
 * The object is not there. Retried, not poison: the sink cannot tell "gone"
 * from "not visible yet" (a replica or an eventually consistent store), and
 * retrying costs only a few receives.
 */
export const objectMissing = (uri: string): Failure => retry(`batch object missing: ${uri}`);

/** The object is, or lies under, a symbolic link: the store never follows one. */
export const symlink = (uri: string): Failure =>
  poison(`symlink: ${uri} is or lies under a symbolic link; the store never follows one`);

/** What the store threw while opening or reading: its own errors by rule, anything else (I/O) retried. */
export function fetchFailed(m: BufferMessage, err: unknown): Failure {
  if (err instanceof ObjectNotFoundError) return objectMissing(m.batch_uri);
  if (err instanceof ObjectSymlinkError) return symlink(m.batch_uri);
  if (err instanceof ObjectTooLargeError) return sizeMismatch(err.size, m.batch_size_bytes);
  return retry(`fetching ${m.batch_uri}: ${describeError(err)}`);
}

/** A line breaks the batch format or the AlertLine contract: `line 3: severity: …`. */
export const invalidLine = (line: number, why: string): Failure => poison(`line ${line}: ${why}`);

/** The batch as a whole is refused (e.g. empty). */
export const invalidBatch = (why: string): Failure => poison(why);

/**
 * A database error on a validated batch. Unreachable, restarting, deadlock,
 * serialization: retried. A data exception (SQLSTATE class 22) means these
 * values can never be stored: poison, named by its code only, since
 * PostgreSQL's message may quote the value. A missing schema is retried with
 * the hint to migrate. Anything else is retried.
 */
export function databaseFailed(err: unknown): Failure {
  const code = sqlState(err);
  if (!isTransientDbError(err) && code?.startsWith("22")) {
    return poison(`the database refused the batch (SQLSTATE ${code})`);
  }
  const hint = isMissingMigration(err) ? `${MISSING_SCHEMA}: ` : "";
  return retry(`${hint}writing the batch: ${describeError(err)}`);
}

/** Anything else thrown while handling a batch: a bug or an outage, retried until max receives. */
export const unexpected = (err: unknown): Failure => retry(`unexpected: ${describeError(err)}`);
