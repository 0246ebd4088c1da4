import {
  type Body,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  ObjectTooLargeError,
  readCapped,
} from "./store";
import { keyUnder, uriFor } from "./uri";

/**
 * What both stores share: URIs under the root, and capped reads built on
 * `stat` and a raw stream. Each store supplies put, stat, openStream, delete.
 */
export abstract class BaseObjectStore implements ObjectStore {
  constructor(readonly root: string) {}

  abstract put(
    key: string,
    body: Body,
    options: { contentType: string },
  ): Promise<{ uri: string; size: number }>;
  abstract stat(key: string): Promise<ObjectStat | undefined>;
  abstract delete(key: string): Promise<void>;
  /** The object's bytes as a stream, uncapped: only called once stat has checked the size. */
  protected abstract openStream(key: string): ReadableStream<Uint8Array>;

  uriFor(key: string): string {
    return uriFor(this.root, key);
  }

  keyOf(uri: string, prefix?: string): string | undefined {
    return keyUnder(this.root, uri, prefix);
  }

  async getStream(key: string, options: { maxBytes: number }): Promise<ReadableStream<Uint8Array>> {
    const s = await this.stat(key);
    if (s === undefined) throw new ObjectNotFoundError(this.uriFor(key));
    if (s.size > options.maxBytes)
      throw new ObjectTooLargeError(this.uriFor(key), s.size, options.maxBytes);
    return this.openStream(key);
  }

  async getBytes(key: string, options: { maxBytes: number }): Promise<Uint8Array> {
    return readCapped(await this.getStream(key, options), this.uriFor(key), options.maxBytes);
  }

  async getText(key: string, options: { maxBytes: number }): Promise<string> {
    return new TextDecoder("utf-8", { fatal: true }).decode(await this.getBytes(key, options));
  }
}
