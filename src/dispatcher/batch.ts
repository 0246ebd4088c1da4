import { NDJSON } from "../contracts/common";

/**
 * What buffer-publish accepts as a batch reference (invariant 6): a single
 * plain file name directly under `<OBJECT_STORE_URL>/<org_id>/<task_id>/`,
 * of the batch content type, within the size limit.
 */

export interface BatchRef {
  batchUri: string;
  contentType: string;
  batchSizeBytes: number;
}

export interface BatchRules {
  objectStoreUrl: string;
  maxBatchBytes: number;
  /** Distinct batches one attempt may publish (MAX_BATCHES_PER_ATTEMPT); past it, 422. */
  maxBatchesPerAttempt: number;
}

// A file name: no separators, no percent-encoding, no query or fragment, no dot-only names.
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** Why a batch reference is refused, or null when it is acceptable. */
export function batchRefusal(
  ref: BatchRef,
  owner: { orgId: string; taskId: string },
  rules: BatchRules,
): string | null {
  if (ref.contentType !== NDJSON) return `content_type must be ${NDJSON}`;
  if (ref.batchSizeBytes < 1) return "batch_size_bytes must be positive";
  if (ref.batchSizeBytes > rules.maxBatchBytes) {
    return `batch_size_bytes must be at most ${rules.maxBatchBytes}`;
  }
  const prefix = `${rules.objectStoreUrl}/${owner.orgId}/${owner.taskId}/`;
  const uri = ref.batchUri;
  if (!uri.startsWith(prefix)) return `batch_uri must lie under ${prefix}`;
  if (uri.includes("..") || uri.includes("%") || uri.includes("\\")) {
    return "batch_uri must not contain '..', '%' or '\\'";
  }
  if (!FILE_NAME.test(uri.slice(prefix.length))) {
    return `batch_uri must name one file directly under ${prefix} (letters, digits, '_', '.', '-')`;
  }
  return null;
}
