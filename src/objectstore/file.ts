import { randomUUID } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BaseObjectStore } from "./base";
import type { Body, ObjectStat } from "./store";
import { keySegments } from "./uri";

const CONTENT_TYPES: Record<string, string> = {
  ".jsonl": "application/x-ndjson",
  ".ndjson": "application/x-ndjson",
  ".json": "application/json",
  ".txt": "text/plain",
};

function isNotFound(err: unknown): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === "ENOENT";
}

async function* chunksOf(body: Body): AsyncGenerator<Uint8Array> {
  if (typeof body === "string") yield new TextEncoder().encode(body);
  else if (body instanceof Uint8Array) yield body;
  else if (body instanceof Blob) yield* body.stream();
  else yield* body;
}

/**
 * A directory as an object store. A put writes a temp file in the target
 * folder, fsyncs it, renames it into place and fsyncs the folder: a crash
 * leaves either the whole object or none (plus, at worst, a stray temp file).
 */
export class FileObjectStore extends BaseObjectStore {
  private constructor(
    root: string,
    private readonly dir: string,
  ) {
    super(root);
  }

  static async open(url: string): Promise<FileObjectStore> {
    const root = url.replace(/\/+$/, "");
    const dir = fileURLToPath(root);
    await mkdir(dir, { recursive: true });
    return new FileObjectStore(root, dir);
  }

  private pathOf(key: string): string {
    return join(this.dir, ...keySegments(key));
  }

  async put(key: string, body: Body, _options: { contentType: string }) {
    const path = this.pathOf(key);
    const folder = dirname(path);
    await mkdir(folder, { recursive: true });
    const temp = join(folder, `.tmp-${randomUUID()}`);
    let size = 0;
    const handle = await open(temp, "w", 0o644);
    try {
      for await (const chunk of chunksOf(body)) {
        await handle.write(chunk);
        size += chunk.byteLength;
      }
      await handle.sync();
    } catch (cause) {
      await handle.close();
      await rm(temp, { force: true });
      throw new Error(`writing object ${this.uriFor(key)}`, { cause });
    }
    await handle.close();
    await rename(temp, path);
    const dirHandle = await open(folder, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    return { uri: this.uriFor(key), size };
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      if (!s.isFile()) return undefined;
      const ext = /\.[^.]+$/.exec(key)?.[0] ?? "";
      return { size: s.size, contentType: CONTENT_TYPES[ext] };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`stat of object ${this.uriFor(key)}`, { cause: err });
    }
  }

  protected openStream(key: string): ReadableStream<Uint8Array> {
    return Bun.file(this.pathOf(key)).stream();
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
