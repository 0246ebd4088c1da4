import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openObjectStore } from "../../src/objectstore/index";
import { objectStoreSuite } from "./suite";

const base = mkdtempSync(join(tmpdir(), "harness-files-"));
let n = 0;
const noS3 = {
  endpoint: undefined,
  accessKeyId: undefined,
  secretAccessKey: undefined,
  region: undefined,
};

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

  test("unknown schemes are refused", async () => {
    await expect(openObjectStore("ftp://x/y", noS3)).rejects.toThrow(/neither/);
  });
});
