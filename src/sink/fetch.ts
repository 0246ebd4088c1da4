import type { BufferMessage } from "../contracts/queue";
import type { ObjectStore } from "../objectstore";
import {
  claimOverCap,
  type Failure,
  fetchFailed,
  outsideItsFolder,
  readMismatch,
  sizeMismatch,
} from "./failure";
import type { AlertList, AlertRows } from "./rows";
import { BatchValidator } from "./validate";

/**
 * Locating, fetching and validating a batch, in the order that keeps the
 * sink safe: the URI must lie under `<store>/<org_id>/<task_id>/` of the
 * message (the dispatcher's record) or it is never fetched; a claimed size
 * over the cap is never fetched; the opened object's size must match the
 * claim; then its bytes stream through the validator, line by line, and the
 * read stops at the claimed size. Which failure is poison and which is
 * retried: src/sink/failure.ts.
 */

export type Fetched = { kind: "ok"; rows: AlertRows | AlertList } | Failure;

/** The object key of the message's batch, or why it is refused. */
export function batchKey(store: ObjectStore, m: BufferMessage): { key: string } | Failure {
  const key = store.keyOf(m.batch_uri, `${m.org_id}/${m.task_id}`);
  return key === undefined ? outsideItsFolder(store.root, m) : { key };
}

/** Streams the bytes through the validator: the validator's failure, or how many bytes came. */
async function validateStream(
  stream: ReadableStream<Uint8Array>,
  validator: BatchValidator,
  claimed: number,
): Promise<Failure | number> {
  let total = 0;
  // Leaving the loop early cancels the stream, which closes the object.
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > claimed) return readMismatch(total, claimed);
    const failure = validator.push(chunk);
    if (failure !== undefined) return failure;
  }
  return total;
}

/** The validated rows of the message's batch, or why not. */
export async function fetchBatch(
  store: ObjectStore,
  m: BufferMessage,
  maxBatchBytes: number,
): Promise<Fetched> {
  const located = batchKey(store, m);
  if ("kind" in located) return located;
  if (m.batch_size_bytes > maxBatchBytes) return claimOverCap(m.batch_size_bytes, maxBatchBytes);
  try {
    const opened = await store.read(located.key, { maxBytes: m.batch_size_bytes });
    if (opened.size !== m.batch_size_bytes) {
      await opened.stream.cancel();
      return sizeMismatch(opened.size, m.batch_size_bytes);
    }
    const validator = new BatchValidator(m.org_id, m.batch_size_bytes);
    const streamed = await validateStream(opened.stream, validator, m.batch_size_bytes);
    if (typeof streamed !== "number") return streamed;
    if (streamed !== m.batch_size_bytes) return readMismatch(streamed, m.batch_size_bytes);
    const checked = validator.end();
    return checked.ok ? { kind: "ok", rows: checked.rows } : checked.failure;
  } catch (err) {
    return fetchFailed(m, err);
  }
}
