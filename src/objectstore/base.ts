import {
  type Body,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  ObjectTooLargeError,
  type OpenedObject,
  readCapped,
} from "./store";
import { keyUnder, uriFor } from "./uri";

/**
 * What both stores share: URIs under the root, and capped reads built on
 * `open`, which gives an object's size and bytes from the same object. Each
 * store supplies put, create, open, delete.
 */
export abstract class BaseObjectStore implements ObjectStore {
  constructor(readonly root: string) {}

  abstract put(
    key: string,
    body: Body,
    options: { contentType: string },
  ): Promise<{ uri: string; size: number }>;
  abstract create(
    key: string,
    body: Body,
    options: { contentType: string },
  ): Promise<{ uri: string; size: number }>;
  abstract delete(key: string): Promise<void>;
  /** The object opened for reading (its stream uncapped, not yet read), or undefined when there is none. */
  protected abstract open(key: string): Promise<OpenedObject | undefined>;

  uriFor(key: string): string {
    return uriFor(this.root, key);
  }

  keyOf(uri: string, prefix?: string): string | undefined {
    return keyUnder(this.root, uri, prefix);
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    const o = await this.open(key);
    if (o === undefined) return undefined;
    await o.stream.cancel();
    return { size: o.size, contentType: o.contentType };
  }

  async read(key: string, options: { maxBytes: number }): Promise<OpenedObject> {
    const o = await this.open(key);
    if (o === undefined) throw new ObjectNotFoundError(this.uriFor(key));
    if (o.size > options.maxBytes) {
      await o.stream.cancel();
      throw new ObjectTooLargeError(this.uriFor(key), o.size, options.maxBytes);
    }
    return o;
  }

  async getStream(key: string, options: { maxBytes: number }): Promise<ReadableStream<Uint8Array>> {
    return (await this.read(key, options)).stream;
  }

  async getBytes(key: string, options: { maxBytes: number }): Promise<Uint8Array> {
    return readCapped(await this.getStream(key, options), this.uriFor(key), options.maxBytes);
  }

  async getText(key: string, options: { maxBytes: number }): Promise<string> {
    return new TextDecoder("utf-8", { fatal: true }).decode(await this.getBytes(key, options));
  }
}
