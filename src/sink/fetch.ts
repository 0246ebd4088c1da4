import type { BufferMessage } from "../contracts/queue";
import { describeError } from "../describe-error";
import { ObjectNotFoundError, type ObjectStore, ObjectTooLargeError } from "../objectstore";

/**
 * Locating and fetching a batch, in the order that keeps the sink safe:
 * the URI must lie under `<store>/<org_id>/<task_id>/` of the message (the
 * dispatcher's record) or it is never fetched; a claimed size over the cap
 * is never fetched; the object's size must match the claim; the read is capped.
 *
 * A missing object is retried, not poison: the sink cannot tell "gone" from
 * "not visible yet" (a replica or an eventually consistent S3-compatible
 * store), and retrying costs only a few receives — after MAX_RECEIVES the
 * queue dead-letters it with "batch object missing" as its last error.
 */

/** `poison`: dead-letter now. `retry`: leave it for redelivery after the visibility timeout. */
export type Failure = { kind: "poison"; reason: string } | { kind: "retry"; reason: string };
export type Fetched = { kind: "ok"; bytes: Uint8Array } | Failure;

const poison = (reason: string): Failure => ({ kind: "poison", reason });
const retry = (reason: string): Failure => ({ kind: "retry", reason });

/** The object key of the message's batch, or why it is refused. */
export function batchKey(store: ObjectStore, m: BufferMessage): { key: string } | Failure {
  const key = store.keyOf(m.batch_uri, `${m.org_id}/${m.task_id}`);
  if (key === undefined) {
    return poison(
      `batch_uri ${JSON.stringify(m.batch_uri)} is not under ${store.root}/${m.org_id}/${m.task_id}/`,
    );
  }
  return { key };
}

export async function fetchBatch(
  store: ObjectStore,
  m: BufferMessage,
  maxBatchBytes: number,
): Promise<Fetched> {
  const located = batchKey(store, m);
  if ("kind" in located) return located;
  if (m.batch_size_bytes > maxBatchBytes) {
    return poison(`batch_size_bytes ${m.batch_size_bytes} is over the ${maxBatchBytes} byte cap`);
  }
  try {
    const stat = await store.stat(located.key);
    if (stat === undefined) return retry(`batch object missing: ${m.batch_uri}`);
    if (stat.size !== m.batch_size_bytes) {
      return poison(`batch is ${stat.size} bytes, the message claims ${m.batch_size_bytes}`);
    }
    const bytes = await store.getBytes(located.key, { maxBytes: m.batch_size_bytes });
    if (bytes.byteLength !== m.batch_size_bytes) {
      return poison(
        `batch read ${bytes.byteLength} bytes, the message claims ${m.batch_size_bytes}`,
      );
    }
    return { kind: "ok", bytes };
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return retry(`batch object missing: ${m.batch_uri}`);
    if (err instanceof ObjectTooLargeError) {
      return poison(`batch grew past the claimed ${m.batch_size_bytes} bytes while read`);
    }
    return retry(`fetching ${m.batch_uri}: ${describeError(err)}`);
  }
}
