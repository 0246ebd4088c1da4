import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../log";

/**
 * The programs' working folders: `<TMPDIR>/harness-exec-<worker pid>-XXXXXX`.
 * A worker removes each one when its run ends; one killed with -9 cannot,
 * so every worker, at start, removes the folders of workers that are gone.
 */

export const homePrefix = (pid: number): string => `harness-exec-${pid}-`;

const NAME = /^harness-exec-(\d+)-[A-Za-z0-9]{6}$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: a process of another user has that pid, so it is not gone.
    return typeof err === "object" && err !== null && "code" in err && err.code === "EPERM";
  }
}

/** Removes the folders left by workers no longer running; how many it removed. */
export function sweepStaleHomes(dir: string, log: Logger): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed += 1;
    } catch (err) {
      log.warn("could not remove a stale program folder", { err, folder: join(dir, name) });
    }
  }
  if (removed > 0) log.info("removed program folders of workers that are gone", { removed, dir });
  return removed;
}
