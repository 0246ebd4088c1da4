import { S3Client } from "bun";
import {
  type Body,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  ObjectTooLargeError,
  readCapped,
  type S3Settings,
} from "./index";
import { keySegments, keyUnder, uriFor } from "./uri";

function isNotFound(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = "code" in err ? err.code : undefined;
  return code === "NoSuchKey" || code === "ERR_S3_FILE_NOT_FOUND" || code === "NotFound";
}

/** `s3://bucket/prefix` through Bun's built-in S3Client (MinIO, AWS, s3rver). */
export class S3ObjectStore implements ObjectStore {
  private constructor(
    readonly root: string,
    private readonly client: S3Client,
    private readonly prefix: string,
  ) {}

  static open(url: string, s3: S3Settings): S3ObjectStore {
    const root = url.replace(/\/+$/, "");
    const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(root);
    if (match?.[1] === undefined) throw new Error(`OBJECT_STORE_URL ${url} names no bucket`);
    const client = new S3Client({
      bucket: match[1],
      ...(s3.endpoint === undefined ? {} : { endpoint: s3.endpoint }),
      ...(s3.accessKeyId === undefined ? {} : { accessKeyId: s3.accessKeyId }),
      ...(s3.secretAccessKey === undefined ? {} : { secretAccessKey: s3.secretAccessKey }),
      ...(s3.region === undefined ? {} : { region: s3.region }),
    });
    return new S3ObjectStore(root, client, match[2] ?? "");
  }

  uriFor(key: string): string {
    return uriFor(this.root, key);
  }

  keyOf(uri: string, prefix?: string): string | undefined {
    return keyUnder(this.root, uri, prefix);
  }

  private path(key: string): string {
    const k = keySegments(key).join("/");
    return this.prefix === "" ? k : `${this.prefix}/${k}`;
  }

  async put(key: string, body: Body, options: { contentType: string }) {
    const uri = this.uriFor(key);
    try {
      const data = body instanceof ReadableStream ? new Response(body) : body;
      const size = await this.client.write(this.path(key), data, { type: options.contentType });
      return { uri, size };
    } catch (cause) {
      throw new Error(`writing object ${uri}`, { cause });
    }
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    try {
      const s = await this.client.stat(this.path(key));
      return { size: s.size, contentType: s.type || undefined };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`stat of object ${this.uriFor(key)}`, { cause: err });
    }
  }

  async getStream(key: string, options: { maxBytes: number }): Promise<ReadableStream<Uint8Array>> {
    const s = await this.stat(key);
    if (s === undefined) throw new ObjectNotFoundError(this.uriFor(key));
    if (s.size > options.maxBytes)
      throw new ObjectTooLargeError(this.uriFor(key), s.size, options.maxBytes);
    return this.client.file(this.path(key)).stream();
  }

  async getBytes(key: string, options: { maxBytes: number }): Promise<Uint8Array> {
    return readCapped(await this.getStream(key, options), this.uriFor(key), options.maxBytes);
  }

  async getText(key: string, options: { maxBytes: number }): Promise<string> {
    return new TextDecoder("utf-8", { fatal: true }).decode(await this.getBytes(key, options));
  }

  async delete(key: string): Promise<void> {
    await this.client.delete(this.path(key));
  }
}
