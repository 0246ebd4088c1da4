import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { BufferMessage } from "../../src/contracts/queue";
import { connect } from "../../src/db/connect";
import { MISSING_SCHEMA } from "../../src/db/errors";
import {
  ObjectNotFoundError,
  ObjectSymlinkError,
  ObjectTooLargeError,
} from "../../src/objectstore";
import {
  claimOverCap,
  databaseFailed,
  fetchFailed,
  invalidBatch,
  invalidLine,
  objectMissing,
  outsideItsFolder,
  readMismatch,
  sizeMismatch,
  symlink,
  unexpected,
} from "../../src/sink/failure";
import { useFreshDatabase } from "../support/db";

/** One test per rule of src/sink/failure.ts: poison or retried, and what the reason says. */

const db = useFreshDatabase();
const taskId = randomUUID();
const message: BufferMessage = {
  task_id: taskId,
  org_id: "acme",
  attempt: 1,
  batch_uri: `file:///store/acme/${taskId}/1-a.jsonl`,
  content_type: "application/x-ndjson",
  batch_size_bytes: 100,
};

/** The error PostgreSQL really raises for `sql`. */
async function pgError(sql: string): Promise<unknown> {
  return db()
    .sql.unsafe(sql)
    .then(
      () => {
        throw new Error(`${sql} did not fail`);
      },
      (err: unknown) => err,
    );
}

describe("sink failures: poison or retried", () => {
  test("a URI outside <store>/<org>/<task>/ is poison, never fetched", () => {
    expect(outsideItsFolder("file:///store", message)).toEqual({
      kind: "poison",
      reason: `batch_uri "${message.batch_uri}" is not under file:///store/acme/${taskId}/`,
    });
  });

  test("a claimed size over the cap is poison", () => {
    expect(claimOverCap(2 ** 31, 64)).toEqual({
      kind: "poison",
      reason: "batch_size_bytes 2147483648 is over the 64 byte cap",
    });
  });

  test("an object whose size is not the claimed size is poison", () => {
    expect(sizeMismatch(90, 100)).toEqual({
      kind: "poison",
      reason: "batch is 90 bytes, the message claims 100",
    });
  });

  test("reading more or fewer bytes than claimed is poison", () => {
    expect(readMismatch(101, 100)).toEqual({
      kind: "poison",
      reason: "batch grew past the claimed 100 bytes while read",
    });
    expect(readMismatch(99, 100)).toEqual({
      kind: "poison",
      reason: "batch read 99 bytes, the message claims 100",
    });
  });

  test("a missing object is retried (it may not be visible yet)", () => {
    expect(objectMissing(message.batch_uri)).toEqual({
      kind: "retry",
      reason: `batch object missing: ${message.batch_uri}`,
    });
  });

  test("a symlink is poison, its reason starting 'symlink'", () => {
    const f = symlink(message.batch_uri);
    expect(f.kind).toBe("poison");
    expect(f.reason).toStartWith(`symlink: ${message.batch_uri} `);
  });

  test("what the store throws maps to its rule; anything else (I/O) is retried", () => {
    const uri = message.batch_uri;
    expect(fetchFailed(message, new ObjectNotFoundError(uri))).toEqual(objectMissing(uri));
    expect(fetchFailed(message, new ObjectSymlinkError(uri))).toEqual(symlink(uri));
    expect(fetchFailed(message, new ObjectTooLargeError(uri, 500, 100))).toEqual(
      sizeMismatch(500, 100),
    );
    const io = Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
    expect(fetchFailed(message, io)).toEqual({
      kind: "retry",
      reason: `fetching ${uri}: EIO: i/o error, read`,
    });
  });

  test("a bad line and a bad batch are poison, the line named", () => {
    expect(invalidLine(3, "severity: Invalid type")).toEqual({
      kind: "poison",
      reason: "line 3: severity: Invalid type",
    });
    expect(invalidBatch("empty batch")).toEqual({ kind: "poison", reason: "empty batch" });
  });

  test("a data exception (SQLSTATE class 22) is poison, named by its code, never its message", async () => {
    const err = await pgError("SELECT 's3cr3t-value'::int");
    const f = databaseFailed(err);
    expect(f).toEqual({
      kind: "poison",
      reason: "the database refused the batch (SQLSTATE 22P02)",
    });
  });

  test("an unreachable database, and other database errors, are retried", async () => {
    const unreachable = connect("postgres://postgres@127.0.0.1:1/nowhere", {
      name: "test-unreachable",
      max: 1,
    });
    const refused = await unreachable`SELECT 1`.then(
      () => undefined,
      (e: unknown) => e,
    );
    await unreachable.end();
    expect(databaseFailed(refused).kind).toBe("retry");
    expect(databaseFailed(refused).reason).toStartWith("writing the batch: ");
    const other = await pgError("SELEC 1");
    expect(databaseFailed(other).kind).toBe("retry");
  });

  test("a missing schema is retried, saying to migrate", async () => {
    const missing = await pgError("SELECT * FROM data.no_such_table");
    const f = databaseFailed(missing);
    expect(f.kind).toBe("retry");
    expect(f.reason).toStartWith(`${MISSING_SCHEMA}: writing the batch: `);
  });

  test("anything unexpected is retried", () => {
    expect(unexpected(new RangeError("Maximum call stack size exceeded"))).toEqual({
      kind: "retry",
      reason: "unexpected: Maximum call stack size exceeded",
    });
  });
});
