import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EmbeddedUnavailableError, startEmbeddedPostgres } from "../../src/platform/embedded";
import { cacheRoot, unpackOnce } from "../../src/platform/pg-archive";

/**
 * The compiled binary's PostgreSQL is unpacked once into the cache: whole
 * or not at all, reused afterwards, and safe when several processes start
 * at once. Exercised on a small archive made here the way the build makes
 * the real one (GNU tar of a folder, zstd).
 */

const root = mkdtempSync(join(tmpdir(), "harness-unpack-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let archive: Promise<Blob> | undefined;
const makeArchive = () => {
  archive ??= buildArchive();
  return archive;
};

async function buildArchive(): Promise<Blob> {
  const src = join(root, "src");
  mkdirSync(join(src, "bin"), { recursive: true });
  mkdirSync(join(src, "lib"), { recursive: true });
  writeFileSync(join(src, "bin", "postgres"), "#!/bin/sh\necho postgres\n");
  chmodSync(join(src, "bin", "postgres"), 0o755);
  writeFileSync(join(src, "lib", "libpq.so.5.18"), "library");
  symlinkSync("libpq.so.5.18", join(src, "lib", "libpq.so.5"));
  const tar = Bun.spawnSync(["tar", "-C", src, "-cf", "-", "."]);
  expect(tar.exitCode).toBe(0);
  return new Blob([await Bun.zstdCompress(tar.stdout, { level: 3 })]);
}

const leftovers = (dir: string) => readdirSync(dir).filter((n) => n.includes(".tmp-"));

describe("unpacking the embedded PostgreSQL", () => {
  test("unpacks whole, keeping modes and symlinks; a second call reuses it", async () => {
    const archive = await makeArchive();
    const target = join(root, "cache", "pg-1");
    expect(await unpackOnce(archive, target)).toBe(true);
    expect(statSync(join(target, "bin", "postgres")).mode & 0o111).toBe(0o111);
    expect(lstatSync(join(target, "lib", "libpq.so.5")).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(target, "lib", "libpq.so.5"))).toBe("libpq.so.5.18");
    const made = statSync(target).mtimeMs;
    expect(await unpackOnce(archive, target)).toBe(false);
    expect(statSync(target).mtimeMs).toBe(made);
    expect(leftovers(join(root, "cache"))).toEqual([]);
  });

  test("several at once: one unpacks, the others use its copy, nothing is left over", async () => {
    const archive = await makeArchive();
    const target = join(root, "race", "pg-1");
    const made = await Promise.all(Array.from({ length: 4 }, () => unpackOnce(archive, target)));
    expect(made.filter(Boolean)).toHaveLength(1);
    expect(readdirSync(join(target, "bin"))).toEqual(["postgres"]);
    expect(leftovers(join(root, "race"))).toEqual([]);
  });

  test("a broken archive leaves neither the folder nor a temporary one", async () => {
    const target = join(root, "broken", "pg-1");
    const bad = new Blob([await Bun.zstdCompress(new Uint8Array(1000).fill(7))]);
    await expect(unpackOnce(bad, target)).rejects.toThrow(
      `unpacking the embedded PostgreSQL into ${target}`,
    );
    expect(readdirSync(join(root, "broken"))).toEqual([]);
  });

  test("a folder others may write to is not run from", async () => {
    const target = join(root, "foreign", "pg-1");
    mkdirSync(target, { recursive: true });
    chmodSync(target, 0o777);
    await expect(unpackOnce(await makeArchive(), target)).rejects.toThrow("others may write to it");
  });

  test("the cache is $XDG_CACHE_HOME/harness, else ~/.cache/harness", () => {
    expect(cacheRoot({ XDG_CACHE_HOME: "/x/cache", HOME: "/home/u" })).toBe("/x/cache/harness");
    expect(cacheRoot({ XDG_CACHE_HOME: "relative", HOME: "/home/u" })).toBe(
      "/home/u/.cache/harness",
    );
    expect(cacheRoot({ HOME: "/home/u" })).toBe("/home/u/.cache/harness");
  });
});

test("a data folder that holds something else is refused, and left as it was", async () => {
  const dir = join(root, "pg");
  mkdirSync(join(dir, "data"), { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  writeFileSync(join(dir, "data", "notes.txt"), "mine");
  const start = startEmbeddedPostgres({ dir, password: "p" });
  await expect(start).rejects.toBeInstanceOf(EmbeddedUnavailableError);
  expect(readdirSync(join(dir, "data"))).toEqual(["notes.txt"]);
});
