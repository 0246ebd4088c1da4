/**
 * The object store: one interface (./store.ts), two implementations chosen by
 * OBJECT_STORE_URL — `file:///dir` (atomic, fsynced writes) and
 * `s3://bucket/prefix` (Bun's S3Client).
 */

import type { ObjectStore, S3Settings } from "./store";

export {
  type Body,
  ObjectExistsError,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  ObjectSymlinkError,
  ObjectTooLargeError,
  type OpenedObject,
  readCapped,
  type S3Settings,
} from "./store";

export async function openObjectStore(url: string, s3: S3Settings): Promise<ObjectStore> {
  if (url.startsWith("file://")) {
    const { FileObjectStore } = await import("./file");
    return FileObjectStore.open(url);
  }
  if (url.startsWith("s3://")) {
    const { S3ObjectStore } = await import("./s3");
    return S3ObjectStore.open(url, s3);
  }
  throw new Error(`OBJECT_STORE_URL ${url} is neither file:/// nor s3://`);
}
