import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openObjectStore } from "../../src/objectstore/index";
import { type S3rver, startS3rver } from "../support/s3rver";
import { objectStoreSuite } from "./suite";

let s3: S3rver | undefined;
let n = 0;

beforeAll(async () => {
  s3 = await startS3rver();
}, 30_000);

afterAll(async () => {
  await s3?.stop();
});

function server(): S3rver {
  if (s3 === undefined) throw new Error("s3rver is not running");
  return s3;
}

function settings() {
  const s = server();
  return {
    endpoint: s.endpoint,
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    region: s.region,
  };
}

objectStoreSuite(
  "s3 (s3rver)",
  () => {
    n += 1;
    return openObjectStore(server().url(`suite-${n}/nested`), settings());
  },
  { atomicConcurrentPuts: false },
);

describe("s3 store specifics", () => {
  test("a store at the bucket root works without a prefix", async () => {
    const store = await openObjectStore(server().url(), settings());
    expect(store.root).toBe(`s3://${server().bucket}`);
    await store.put("org/t/1-x.jsonl", "y\n", { contentType: "application/x-ndjson" });
    expect(await store.getText("org/t/1-x.jsonl", { maxBytes: 2 })).toBe("y\n");
  });

  test("a missing bucket name is refused", async () => {
    await expect(openObjectStore("s3://", settings())).rejects.toThrow(/bucket/);
  });

  test("an unreachable endpoint fails with context, not a hang", async () => {
    const store = await openObjectStore("s3://nowhere", {
      ...settings(),
      endpoint: "http://127.0.0.1:9",
    });
    await expect(store.stat("a/b")).rejects.toThrow(/s3:\/\/nowhere\/a\/b/);
  });
});
