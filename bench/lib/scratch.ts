import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where a subject keeps its object store. The runner (run.ts) makes one
 * folder for the whole run, passes it as BENCH_SCRATCH and removes it after
 * the last round; a subject run alone keeps its folder under the system's
 * temp folder and removes it itself. On the bench VM (ext4 mounted with
 * online discard) removing a round's thousands of files made the file
 * creations and fsyncs that followed cost up to three times the system CPU
 * (bench/README.md), so no subject's cleanup may land in the next
 * subject's timed span.
 */
export const SCRATCH_ENV = "BENCH_SCRATCH";

export interface Scratch {
  dir: string;
  /** Removes the folder, unless the runner removes the run's folder at its end. */
  release(): void;
}

export function scratchDir(prefix: string): Scratch {
  const shared = process.env[SCRATCH_ENV];
  const dir = mkdtempSync(join(shared ?? tmpdir(), prefix));
  return {
    dir,
    release: () => {
      if (shared === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The run's folder, for every subject it starts; `remove` once the last round is done. */
export function runScratch(): { remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-run-"));
  process.env[SCRATCH_ENV] = dir;
  return {
    remove: () => {
      delete process.env[SCRATCH_ENV];
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
