import { cpSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";
import * as v from "valibot";
import { createLogger } from "../log";
import { cacheRoot, embeddedPgArchive, makeOnce, pgBuildName, unpackOnce } from "./pg-archive";

/**
 * Where the embedded PostgreSQL's executables come from: the compiled
 * binary unpacks its own copy into the user's cache folder
 * (pg-archive.ts); a checkout runs the npm package's.
 *
 * As root, the embedded PostgreSQL runs as the `postgres` user, which must be
 * able to enter every folder above its executables and its data. When the
 * cache or the checkout is in a folder closed to other users (root's home,
 * or what `mktemp -d` makes), the executables go to a folder of their own
 * under the temp folder instead, made once per version and shared by every
 * process.
 */

const log = createLogger("embedded-postgres");

const isRoot = () => process.getuid?.() === 0;

/** The first existing folder on the way to `path` that other users cannot enter, if any. */
export function closedFolder(path: string): string | undefined {
  const { root } = parse(path);
  const folders: string[] = [];
  for (let dir = dirname(path); dir !== root; dir = dirname(dir)) folders.unshift(dir);
  return folders.find((dir) => {
    const st = statSync(dir, { throwIfNoEntry: false });
    return st !== undefined && (st.mode & 0o001) === 0;
  });
}

/** Why the `postgres` user could not reach `path` when we run as root, or undefined. */
export function outOfReach(path: string, what: string): string | undefined {
  const closed = isRoot() ? closedFolder(path) : undefined;
  if (closed === undefined) return undefined;
  return `${what} ${path} is out of reach of the postgres user the embedded PostgreSQL runs as under root: ${closed} is closed to other users (chmod o+x it, or use a folder under ${tmpdir()})`;
}

const NativePackage = v.object({ postgres: v.string(), initdb: v.string() });
const PackageJson = v.object({ version: v.string() });

export type PgBinaries = v.InferOutput<typeof NativePackage>;

const binariesIn = (dir: string): PgBinaries => ({
  postgres: join(dir, "bin", "postgres"),
  initdb: join(dir, "bin", "initdb"),
});

/** `preferred`, or as root when the postgres user cannot reach it, a folder under the temp folder. */
function reachableFolder(preferred: string, name: string): string {
  return isRoot() && closedFolder(preferred) !== undefined
    ? join(tmpdir(), `harness-${name}`)
    : preferred;
}

/** The executables to run: unpacked from this binary, or the npm package's (staged as root when out of reach). */
export async function pgBinaries(): Promise<PgBinaries> {
  const archive = embeddedPgArchive();
  if (archive !== undefined) {
    const dir = reachableFolder(join(cacheRoot(), archive.name), archive.name);
    const started = performance.now();
    if (await unpackOnce(archive.blob, dir)) {
      log.info("unpacked the embedded PostgreSQL", {
        dir,
        ms: Math.round(performance.now() - started),
      });
    }
    return binariesIn(dir);
  }
  return packageBinaries();
}

async function packageBinaries(): Promise<PgBinaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let own: PgBinaries;
  try {
    own = v.parse(NativePackage, await import(name));
  } catch (cause) {
    throw new Error(
      `the embedded PostgreSQL is not here: ${name} is not installed (run bun install), and this binary was not built with bun run build`,
      { cause },
    );
  }
  if (!isRoot() || closedFolder(own.initdb) === undefined) return own;
  const native = dirname(dirname(own.initdb));
  const { version } = v.parse(
    PackageJson,
    await Bun.file(join(native, "..", "package.json")).json(),
  );
  const staged = reachableFolder(native, pgBuildName(version));
  await makeOnce(staged, `copying the PostgreSQL executables from ${native}`, (work) => {
    cpSync(native, work, { recursive: true, verbatimSymlinks: true });
  });
  return binariesIn(staged);
}
