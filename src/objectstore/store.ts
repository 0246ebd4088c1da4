/** The object store's interface, its errors and settings, shared by both implementations. */

export type Body = string | Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface ObjectStat {
  size: number;
  contentType: string | undefined;
}

export interface ObjectStore {
  /** OBJECT_STORE_URL without a trailing slash; every object URI starts with `${root}/`. */
  readonly root: string;
  uriFor(key: string): string;
  /** The key of a URI under this store's root (and under `prefix` when given), else undefined. */
  keyOf(uri: string, prefix?: string): string | undefined;
  /** Writes an object whole: readers never see a partial one. Returns its URI and size. */
  put(
    key: string,
    body: Body,
    options: { contentType: string },
  ): Promise<{ uri: string; size: number }>;
  /**
   * Writes a new object under a fresh key of the caller's own (one carrying a
   * UUID), which no reader may be given before this resolves. Durable like a
   * put, and cheaper on the file store (no temp file, no rename) because it
   * writes in place: until it resolves the key may hold part of the object,
   * and a crash in the middle may leave that part there, under a key nobody
   * was given. A create that fails removes what it wrote. It is not for
   * replacing: the file store refuses a taken key (ObjectExistsError); on S3,
   * whose PUT is atomic anyway, a create is a put.
   */
  create(
    key: string,
    body: Body,
    options: { contentType: string },
  ): Promise<{ uri: string; size: number }>;
  /** Undefined when there is no such object. */
  stat(key: string): Promise<ObjectStat | undefined>;
  /**
   * Opens the object for reading: its size and its bytes come from the same
   * object. ObjectNotFoundError, or ObjectTooLargeError when it is over
   * `maxBytes` (the stream is not capped: the reader counts). Cancel the
   * stream when stopping early.
   */
  read(key: string, options: { maxBytes: number }): Promise<OpenedObject>;
  /** The object's bytes; ObjectNotFoundError or ObjectTooLargeError past `maxBytes`. */
  getBytes(key: string, options: { maxBytes: number }): Promise<Uint8Array>;
  getText(key: string, options: { maxBytes: number }): Promise<string>;
  getStream(key: string, options: { maxBytes: number }): Promise<ReadableStream<Uint8Array>>;
  delete(key: string): Promise<void>;
}

export interface OpenedObject extends ObjectStat {
  stream: ReadableStream<Uint8Array>;
}

export class ObjectNotFoundError extends Error {
  override name = "ObjectNotFoundError";
  constructor(readonly uri: string) {
    super(`no object at ${uri}`);
  }
}

export class ObjectTooLargeError extends Error {
  override name = "ObjectTooLargeError";
  constructor(
    readonly uri: string,
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(`object ${uri} is ${size} bytes, over the ${maxBytes} byte cap`);
  }
}

/** A create found its key taken: it replaces nothing. */
export class ObjectExistsError extends Error {
  override name = "ObjectExistsError";
  constructor(readonly uri: string) {
    super(`an object already exists at ${uri}`);
  }
}

/**
 * The object is, or lies under a folder that is, a symbolic link: a store
 * never leaves its root, so it is never followed (src/objectstore/file.ts).
 */
export class ObjectSymlinkError extends Error {
  override name = "ObjectSymlinkError";
  constructor(readonly uri: string) {
    super(`object ${uri} is or lies under a symbolic link, which the store never follows`);
  }
}

/** Reads a stream whole, failing once it passes `maxBytes`. */
export async function readCapped(
  stream: ReadableStream<Uint8Array>,
  uri: string,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new ObjectTooLargeError(uri, total, maxBytes);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

export interface S3Settings {
  endpoint: string | undefined;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  region: string | undefined;
}
