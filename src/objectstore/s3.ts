import { S3Client } from "bun";
import { BaseObjectStore } from "./base";
import type { Body, OpenedObject, S3Settings } from "./store";
import { keySegments } from "./uri";

function isNotFound(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = "code" in err ? err.code : undefined;
  return code === "NoSuchKey" || code === "ERR_S3_FILE_NOT_FOUND" || code === "NotFound";
}

/** A stream that starts its request on the first read, so a stat that only cancels it costs none. */
function lazyStream(start: () => ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  let source: AsyncIterator<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      source ??= start()[Symbol.asyncIterator]();
      const next = await source.next();
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await source?.return?.();
    },
  });
}

/** `s3://bucket/prefix` through Bun's built-in S3Client (MinIO, AWS, s3rver). */
export class S3ObjectStore extends BaseObjectStore {
  private constructor(
    root: string,
    private readonly client: S3Client,
    private readonly prefix: string,
  ) {
    super(root);
  }

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

  /** A PUT is whole and atomic already; a fresh key needs nothing more (S3 has no cheaper write). */
  create(key: string, body: Body, options: { contentType: string }) {
    return this.put(key, body, options);
  }

  /** S3 has no symbolic links; the size is the stat's, and the read is capped by its caller. */
  protected async open(key: string): Promise<OpenedObject | undefined> {
    try {
      const s = await this.client.stat(this.path(key));
      const stream = lazyStream(() => this.client.file(this.path(key)).stream());
      return { size: s.size, contentType: s.type || undefined, stream };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`stat of object ${this.uriFor(key)}`, { cause: err });
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.delete(this.path(key));
  }
}
