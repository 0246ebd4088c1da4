import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  ObjectNotFoundError,
  type ObjectStore,
  ObjectTooLargeError,
} from "../../src/objectstore/index";

/**
 * The one suite every object store must pass. `open` gives a store on a fresh,
 * empty root each time it is called.
 */

const NDJSON = "application/x-ndjson";
const MB = 1024 * 1024;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Deterministic pseudo-random bytes, produced in chunks as a stream. */
function bigStream(
  totalBytes: number,
  chunkBytes = 256 * 1024,
): {
  stream: ReadableStream<Uint8Array>;
  digest: () => string;
} {
  const hash = createHash("sha256");
  let sent = 0;
  let seed = 12345;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= totalBytes) {
        controller.close();
        return;
      }
      const n = Math.min(chunkBytes, totalBytes - sent);
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        chunk[i] = seed >>> 16;
      }
      hash.update(chunk);
      sent += n;
      controller.enqueue(chunk);
    },
  });
  return { stream, digest: () => hash.digest("hex") };
}

/** What `p` rejects with; a promise that resolves fails the test. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the promise to reject");
}

export interface SuiteOptions {
  /**
   * Whether concurrent puts of one key each land whole (S3, MinIO and the file
   * store: yes; s3rver writes its object file in place, so no).
   */
  atomicConcurrentPuts?: boolean;
}

export function objectStoreSuite(
  name: string,
  open: () => Promise<ObjectStore>,
  options: SuiteOptions = {},
): void {
  describe(`object store: ${name}`, () => {
    test("put then get a text object, with its size and content type", async () => {
      const store = await open();
      const body = '{"a":1}\n{"b":"é"}\n';
      const put = await store.put("org-1/task/1-a.jsonl", body, { contentType: NDJSON });
      const bytes = new TextEncoder().encode(body).byteLength;
      expect(put).toEqual({ uri: `${store.root}/org-1/task/1-a.jsonl`, size: bytes });
      expect(await store.getText("org-1/task/1-a.jsonl", { maxBytes: 1024 })).toBe(body);
      const stat = await store.stat("org-1/task/1-a.jsonl");
      expect(stat?.size).toBe(bytes);
      expect(stat?.contentType).toBe(NDJSON);
    });

    test("put accepts bytes, a Blob and a stream", async () => {
      const store = await open();
      const bytes = new Uint8Array([0, 1, 2, 255]);
      expect(
        (await store.put("b/bytes.bin", bytes, { contentType: "application/octet-stream" })).size,
      ).toBe(4);
      expect(await store.getBytes("b/bytes.bin", { maxBytes: 4 })).toEqual(bytes);
      await store.put("b/blob.txt", new Blob(["hello"]), { contentType: "text/plain" });
      expect(await store.getText("b/blob.txt", { maxBytes: 5 })).toBe("hello");
      const stream = new Blob(["from ", "a stream"]).stream();
      expect((await store.put("b/stream.txt", stream, { contentType: "text/plain" })).size).toBe(
        13,
      );
      expect(await store.getText("b/stream.txt", { maxBytes: 100 })).toBe("from a stream");
    });

    test("create writes a new object from bytes or a stream", async () => {
      const store = await open();
      const made = await store.create("c/t/1-a.jsonl", '{"a":1}\n', { contentType: NDJSON });
      expect(made).toEqual({ uri: store.uriFor("c/t/1-a.jsonl"), size: 8 });
      expect(await store.getText("c/t/1-a.jsonl", { maxBytes: 100 })).toBe('{"a":1}\n');
      const stream = new Blob(["from ", "a stream"]).stream();
      expect((await store.create("c/t/1-b.txt", stream, { contentType: "text/plain" })).size).toBe(
        13,
      );
      expect(await store.getText("c/t/1-b.txt", { maxBytes: 100 })).toBe("from a stream");
    });

    test("a 20 MB object streams in and out whole", async () => {
      const store = await open();
      const size = 20 * MB;
      const big = bigStream(size);
      const put = await store.put("big/20mb.bin", big.stream, {
        contentType: "application/octet-stream",
      });
      expect(put.size).toBe(size);
      expect((await store.stat("big/20mb.bin"))?.size).toBe(size);
      const back = await store.getBytes("big/20mb.bin", { maxBytes: size });
      expect(back.byteLength).toBe(size);
      expect(sha256(back)).toBe(big.digest());
      const streamed = await store.getStream("big/20mb.bin", { maxBytes: size });
      let total = 0;
      for await (const chunk of streamed) total += chunk.byteLength;
      expect(total).toBe(size);
    }, 60_000);

    test("a key with spaces and unicode round-trips through its URI", async () => {
      const store = await open();
      const key = "org ü/tâsk 東京/1-naïve file 🚀.jsonl";
      const put = await store.put(key, "x\n", { contentType: NDJSON });
      expect(put.uri).toBe(store.uriFor(key));
      expect(put.uri).not.toContain(" ");
      expect(store.keyOf(put.uri)).toBe(key);
      expect(store.keyOf(put.uri, "org ü")).toBe(key);
      expect(await store.getText(key, { maxBytes: 10 })).toBe("x\n");
      expect((await store.stat(key))?.size).toBe(2);
    });

    test("a missing key: stat is undefined, reads throw ObjectNotFoundError", async () => {
      const store = await open();
      expect(await store.stat("nope/missing.jsonl")).toBeUndefined();
      const err = await rejection(store.getText("nope/missing.jsonl", { maxBytes: 10 }));
      expect(err).toBeInstanceOf(ObjectNotFoundError);
      expect(await rejection(store.getStream("nope/missing", { maxBytes: 10 }))).toBeInstanceOf(
        ObjectNotFoundError,
      );
      await store.delete("nope/missing.jsonl"); // deleting nothing is fine
    });

    test("reads past the size cap throw ObjectTooLargeError", async () => {
      const store = await open();
      await store.put("cap/ten.txt", "0123456789", { contentType: "text/plain" });
      expect(await store.getText("cap/ten.txt", { maxBytes: 10 })).toBe("0123456789");
      for (const read of [
        () => store.getBytes("cap/ten.txt", { maxBytes: 9 }),
        () => store.getText("cap/ten.txt", { maxBytes: 1 }),
        () => store.getStream("cap/ten.txt", { maxBytes: 9 }),
      ]) {
        const err = await rejection(read());
        expect(err).toBeInstanceOf(ObjectTooLargeError);
        if (err instanceof ObjectTooLargeError) expect(err.maxBytes).toBeLessThan(10);
      }
    });

    test("getText refuses invalid UTF-8", async () => {
      const store = await open();
      await store.put("utf/bad.txt", new Uint8Array([0x61, 0xff, 0xfe]), {
        contentType: "text/plain",
      });
      expect(await rejection(store.getText("utf/bad.txt", { maxBytes: 10 }))).toBeInstanceOf(Error);
    });

    test("a put replaces an object whole; delete removes it", async () => {
      const store = await open();
      await store.put("o/v.txt", "first version, longer", { contentType: "text/plain" });
      await store.put("o/v.txt", "second", { contentType: "text/plain" });
      expect(await store.getText("o/v.txt", { maxBytes: 100 })).toBe("second");
      await store.delete("o/v.txt");
      expect(await store.stat("o/v.txt")).toBeUndefined();
    });

    test.skipIf(options.atomicConcurrentPuts === false)(
      "concurrent puts of one key leave one whole version",
      async () => {
        const store = await open();
        const bodies = ["a".repeat(100_000), "b".repeat(100_000), "c".repeat(100_000)];
        await Promise.all(
          bodies.map((b) => store.put("race/k.txt", b, { contentType: "text/plain" })),
        );
        const text = await store.getText("race/k.txt", { maxBytes: 200_000 });
        expect(bodies).toContain(text);
      },
    );

    test("keys with empty, dot or dot-dot segments, backslashes or control characters are refused", async () => {
      const store = await open();
      for (const key of [
        "",
        "a//b",
        "/a",
        "a/",
        "./a",
        "a/../b",
        "..",
        "a\\b",
        "a/\u0000b",
        "a\nb",
      ]) {
        expect(() => store.uriFor(key)).toThrow();
        expect(await rejection(store.put(key, "x", { contentType: "text/plain" }))).toBeInstanceOf(
          Error,
        );
      }
    });

    test("keyOf takes only canonical URIs strictly under the root", async () => {
      const store = await open();
      const root = store.root;
      expect(store.keyOf(`${root}/org/t/1-x.jsonl`)).toBe("org/t/1-x.jsonl");
      expect(store.keyOf(`${root}/org/t/1-x.jsonl`, "org/t")).toBe("org/t/1-x.jsonl");
      expect(store.keyOf(`${root}/org/t/1-x.jsonl`, "org/u")).toBeUndefined();
      expect(store.keyOf(`${root}/org/tt/1-x.jsonl`, "org/t")).toBeUndefined();
      const refused = [
        root,
        `${root}/`,
        `${root}x/org/a.jsonl`, // a sibling root sharing the prefix
        `${root}/../elsewhere/a.jsonl`,
        `${root}/org/../../a.jsonl`,
        `${root}/org/%2E%2E/a.jsonl`,
        `${root}/./org/a.jsonl`,
        `${root}/org//a.jsonl`,
        `${root}/org%2Fother/a.jsonl`, // an encoded slash
        `${root}/org%2fother/a.jsonl`,
        `${root}/org%5Cother/a.jsonl`, // an encoded backslash
        `${root}/org/a.jsonl?x=1`,
        `${root}/org/a.jsonl#frag`,
        `${root}/org/%ZZ.jsonl`, // bad escape
        `${root}/org/a%20b%00.jsonl`,
        `${root}/org/a b.jsonl`, // not the canonical spelling
        `http://example.com/org/a.jsonl`,
        `file:///etc/passwd`,
        `s3://other-bucket/org/a.jsonl`,
        `${root.replace(/^[a-z0-9]+:/, "https:")}/org/a.jsonl`,
        `${root.toUpperCase()}/org/a.jsonl`,
      ];
      for (const uri of refused) expect([uri, store.keyOf(uri)]).toEqual([uri, undefined]);
    });
  });
}
