import { afterAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CREATE_AT_ONCE_BYTES } from "../../src/objectstore/file";
import { READ_AT_ONCE_BYTES } from "../../src/objectstore/file-read";
import {
  ObjectExistsError,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectSymlinkError,
  openObjectStore,
} from "../../src/objectstore/index";
import { waitFor } from "../support/wait";
import { objectStoreSuite, rejection } from "./suite";

const base = mkdtempSync(join(tmpdir(), "harness-files-"));
let n = 0;
const noS3 = {
  endpoint: undefined,
  accessKeyId: undefined,
  secretAccessKey: undefined,
  region: undefined,
};

/** A body that yields a chunk, then fails: the write has begun when it does. */
function failingStream(): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) controller.error(new Error("the body broke"));
      else controller.enqueue(new TextEncoder().encode("a partial line"));
      sent = true;
    },
  });
}

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

objectStoreSuite("file", () => {
  n += 1;
  return openObjectStore(pathToFileURL(join(base, `root ${n}`)).href, noS3);
});

describe("file store specifics", () => {
  test("a put leaves no temp file behind and creates folders", async () => {
    const dir = join(base, "specifics");
    const store = await openObjectStore(`${pathToFileURL(dir).href}/`, noS3);
    expect(store.root).toBe(pathToFileURL(dir).href);
    await store.put("org/task/1-a.jsonl", "x\n", { contentType: "application/x-ndjson" });
    expect(await readdir(join(dir, "org", "task"))).toEqual(["1-a.jsonl"]);
  });

  test("a create leaves no temp file and never replaces an object", async () => {
    const dir = join(base, "creates");
    const store = await openObjectStore(pathToFileURL(dir).href, noS3);
    await store.put("org/task/1-a.jsonl", "first\n", { contentType: "application/x-ndjson" });
    const taken = await rejection(
      store.create("org/task/1-a.jsonl", "second\n", { contentType: "application/x-ndjson" }),
    );
    expect(taken).toBeInstanceOf(ObjectExistsError);
    expect(await store.getText("org/task/1-a.jsonl", { maxBytes: 100 })).toBe("first\n");
    await store.create("org/task/1-b.jsonl", "new\n", { contentType: "application/x-ndjson" });
    expect((await readdir(join(dir, "org", "task"))).sort()).toEqual(["1-a.jsonl", "1-b.jsonl"]);
  });

  test("a create writes bodies in memory at once or, past CREATE_AT_ONCE_BYTES, as before", async () => {
    const dir = join(base, "create-sizes");
    const store = await openObjectStore(pathToFileURL(dir).href, noS3);
    const small = new Uint8Array(CREATE_AT_ONCE_BYTES).fill(0x61);
    const large = new Uint8Array(CREATE_AT_ONCE_BYTES + 1).fill(0x62);
    for (const [name, bytes] of [
      ["small", small],
      ["large", large],
    ] as const) {
      const made = await store.create(`org/${name}/1-a.txt`, bytes, { contentType: "text/plain" });
      expect(made.size).toBe(bytes.byteLength);
      const read = await store.getBytes(`org/${name}/1-a.txt`, { maxBytes: large.byteLength });
      expect(Buffer.from(read).equals(Buffer.from(bytes))).toBe(true);
      const again = store.create(`org/${name}/1-a.txt`, "x", { contentType: "text/plain" });
      expect(await rejection(again)).toBeInstanceOf(ObjectExistsError);
    }
    // A folder that cannot be made (a file in its place) is the mkdir's error, not a taken key.
    writeFileSync(join(dir, "org", "blocked"), "");
    const err = await rejection(
      store.create("org/blocked/1-a.txt", "x", { contentType: "text/plain" }),
    );
    expect(err).not.toBeInstanceOf(ObjectExistsError);
    expect(String(err)).toContain(join("org", "blocked"));
  });

  test("a put or a create whose body fails midway leaves no object and no temp file", async () => {
    const dir = join(base, "failures");
    const store = await openObjectStore(pathToFileURL(dir).href, noS3);
    await store.put("org/task/1-kept.jsonl", "kept\n", { contentType: "application/x-ndjson" });
    const write = { put: store.put.bind(store), create: store.create.bind(store) };
    for (const [how, write_] of Object.entries(write)) {
      const key = `org/task/1-${how}.jsonl`;
      const err = await rejection(write_(key, failingStream(), { contentType: "text/plain" }));
      expect(err).toBeInstanceOf(Error);
      expect(await store.stat(key)).toBeUndefined();
    }
    expect(await readdir(join(dir, "org", "task"))).toEqual(["1-kept.jsonl"]);
  });

  test("unknown schemes are refused", async () => {
    await expect(openObjectStore("ftp://x/y", noS3)).rejects.toThrow(/neither/);
  });
});

describe("the file store never leaves its root", () => {
  /** A root with one honest object, and a secret file (mode 0600) outside it. */
  async function planted() {
    const dir = mkdtempSync(join(base, "links-"));
    const outside = join(dir, "outside");
    mkdirSync(join(outside, "task"), { recursive: true });
    writeFileSync(join(outside, "secret.jsonl"), "SECRET\n", { mode: 0o600 });
    writeFileSync(join(outside, "task", "1-a.jsonl"), "SECRET\n", { mode: 0o600 });
    const store = await openObjectStore(pathToFileURL(join(dir, "root")).href, noS3);
    await store.put("acme/honest/1-a.jsonl", "inside\n", { contentType: "application/x-ndjson" });
    return { dir, outside, root: join(dir, "root"), store };
  }

  const reads = (store: ObjectStore, key: string) => [
    () => store.stat(key),
    () => store.read(key, { maxBytes: 100 }),
    () => store.getBytes(key, { maxBytes: 100 }),
    () => store.getText(key, { maxBytes: 100 }),
    () => store.getStream(key, { maxBytes: 100 }),
  ];

  test("a link as the object, as its folder or as a folder higher up is refused on every read", async () => {
    const { outside, root, store } = await planted();
    mkdirSync(join(root, "acme", "t1"), { recursive: true });
    symlinkSync(join(outside, "secret.jsonl"), join(root, "acme", "t1", "1-a.jsonl"));
    symlinkSync(join(outside, "task"), join(root, "acme", "t2"));
    symlinkSync(outside, join(root, "globex"));
    for (const key of ["acme/t1/1-a.jsonl", "acme/t2/1-a.jsonl", "globex/task/1-a.jsonl"]) {
      for (const read of reads(store, key)) {
        const err = await read().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect({ key, err }).toEqual({ key, err: expect.any(ObjectSymlinkError) });
      }
    }
    // The honest object beside them still reads.
    expect(await store.getText("acme/honest/1-a.jsonl", { maxBytes: 100 })).toBe("inside\n");
  });

  test("a root given through a link is resolved once; links under it are still refused", async () => {
    const { dir, outside, root } = await planted();
    symlinkSync(root, join(dir, "root-link"));
    const store = await openObjectStore(pathToFileURL(join(dir, "root-link")).href, noS3);
    expect(await store.getText("acme/honest/1-a.jsonl", { maxBytes: 100 })).toBe("inside\n");
    symlinkSync(join(outside, "task"), join(root, "acme", "t3"));
    await expect(store.getText("acme/t3/1-a.jsonl", { maxBytes: 100 })).rejects.toBeInstanceOf(
      ObjectSymlinkError,
    );
  });

  test("a folder swapped for a link while reads run never yields the outside file", async () => {
    const { outside, root, store } = await planted();
    const acme = join(root, "acme");
    symlinkSync(join(outside, "task"), join(acme, "link"));
    // A child process swaps acme/t between the honest folder and the link, one rename at a time.
    const swapper = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { renameSync } = require("node:fs");
         const d = ${JSON.stringify(acme)};
         for (;;) {
           renameSync(d + "/honest", d + "/t"); renameSync(d + "/t", d + "/honest");
           renameSync(d + "/link", d + "/t"); renameSync(d + "/t", d + "/link");
         }`,
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    const seen = { inside: 0, refused: 0, missing: 0, outside: 0 };
    try {
      await waitFor(
        async () => {
          for (let i = 0; i < 200; i++) {
            try {
              const text = await store.getText("acme/t/1-a.jsonl", { maxBytes: 100 });
              if (text === "inside\n") seen.inside++;
              else seen.outside++;
            } catch (err) {
              if (err instanceof ObjectSymlinkError) seen.refused++;
              else if (err instanceof ObjectNotFoundError) seen.missing++;
              else throw err;
            }
          }
          return seen.outside > 0 || (seen.inside >= 20 && seen.refused >= 20);
        },
        { what: "reads on both sides of the swap", timeoutMs: 60_000, intervalMs: 0 },
      );
    } finally {
      swapper.kill();
      await swapper.exited;
    }
    expect(seen.outside).toBe(0);
  }, 90_000);
});

describe("file store reads", () => {
  const openFds = () => readdirSync("/proc/self/fd").length;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const chunks: number[] = [];
    for await (const chunk of stream) chunks.push(chunk.byteLength);
    return chunks;
  };

  test("an object of up to READ_AT_ONCE_BYTES comes as one chunk, its file already closed", async () => {
    const store = await openObjectStore(pathToFileURL(join(base, "at-once")).href, noS3);
    await store.put("o/t/small.jsonl", "a\n", { contentType: "application/x-ndjson" });
    await store.put("o/t/edge.jsonl", new Uint8Array(READ_AT_ONCE_BYTES).fill(0x61), {
      contentType: "application/x-ndjson",
    });
    const before = openFds();
    const opened = await Promise.all(
      Array.from({ length: 20 }, () => store.read("o/t/small.jsonl", { maxBytes: 10 })),
    );
    // Never read nor cancelled, and still no file left open.
    expect(openFds()).toBe(before);
    expect(await collect(opened[0]?.stream ?? new ReadableStream())).toEqual([2]);
    const edge = await store.read("o/t/edge.jsonl", { maxBytes: READ_AT_ONCE_BYTES });
    expect(edge.size).toBe(READ_AT_ONCE_BYTES);
    expect(await collect(edge.stream)).toEqual([READ_AT_ONCE_BYTES]);
  });

  test("a larger object streams in chunks, and bytes appended after the open still come", async () => {
    const dir = join(base, "streamed");
    const store = await openObjectStore(pathToFileURL(dir).href, noS3);
    const size = READ_AT_ONCE_BYTES + 1;
    await store.put("o/t/big.jsonl", new Uint8Array(size).fill(0x62), {
      contentType: "application/x-ndjson",
    });
    const opened = await store.read("o/t/big.jsonl", { maxBytes: 2 * size });
    expect(opened.size).toBe(size);
    // The reader, not the store, counts against the claimed size: it must see the growth.
    appendFileSync(join(dir, "o", "t", "big.jsonl"), "grown");
    const chunks = await collect(opened.stream);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(size + 5);
    // Stopping early closes the file.
    const before = openFds();
    const again = await store.read("o/t/big.jsonl", { maxBytes: 2 * size });
    expect(openFds()).toBe(before + 1);
    await again.stream.cancel();
    expect(openFds()).toBe(before);
  });
});
