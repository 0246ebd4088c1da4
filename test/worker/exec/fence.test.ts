import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { Subprocess } from "bun";
import { homePrefix, sweepStaleHomes } from "../../../src/worker/exec/homes";
import { EXEC_STARTED } from "../../../src/worker/exec/run";
import { waitFor } from "../../support/wait";
import {
  alive,
  alivePids,
  descendants,
  FIXTURE,
  killAll,
  LINE,
  memoryLogger,
  type Proc,
  processes,
  program,
  removeTempDirs,
  run,
  TASK,
  tempDir,
  tempStore,
} from "./helpers";

afterAll(removeTempDirs);

/**
 * A task program must not outlive the worker, even a kill -9 of it. The
 * fixture (./fixtures/run-once.ts) runs one attempt in a process of its own,
 * as a worker does; its program starts a child in its process group and one
 * that leaves it (setsid), then waits.
 */

const FAMILY = program(
  "family",
  `sleep 1000 &
setsid sleep 1000 &
echo '${LINE}'
exec sleep 1000`,
);

const leftovers: Proc[] = [];
const parents: Subprocess[] = [];
afterEach(() => {
  killAll(leftovers.splice(0));
  for (const p of parents.splice(0)) p.kill("SIGKILL");
});

async function startWorkerLike(fence: "group" | undefined) {
  const s = await tempStore();
  const input = {
    command: [FAMILY],
    storeUrl: s.url,
    taskTimeoutMs: 600_000,
    graceMs: 500,
    maxBatchBytes: 1024 * 1024,
    maxBatches: 4,
    task: { task_id: TASK.task_id, org_id: TASK.org_id, attempt: 1 },
    ...(fence === undefined ? {} : { fence }),
  };
  const tmp = tempDir("harness-exec-tmp-");
  const parent = Bun.spawn([process.execPath, FIXTURE, JSON.stringify(input)], {
    // Its programs' folders land here: a worker killed with -9 cannot remove them.
    env: { ...process.env, TMPDIR: tmp },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  parents.push(parent);
  const family = await waitFor(
    () => {
      const below = descendants(parent.pid);
      leftovers.push(...below.filter((p) => !leftovers.some((l) => l.pid === p.pid)));
      return below.filter((p) => p.comm === "sleep" && alive(p)).length === 3 ? below : undefined;
    },
    { what: "the program and its two sleeping children" },
  );
  return { parent, family, tmp };
}

describe("kill -9 of the worker while its program runs", () => {
  test("namespace fence: the program and everything it started are gone, the escaped child too", async () => {
    const { parent, family, tmp } = await startWorkerLike(undefined);
    const escaped = family.find((p) => p.comm === "sleep" && p.pgrp === p.pid);
    expect(escaped, "a child that left the process group").toBeDefined();
    parent.kill("SIGKILL");
    await parent.exited;
    await waitFor(() => alivePids(family).length === 0, {
      what: `every process of the program gone (left: ${alivePids(family).join(", ")})`,
      timeoutMs: 5_000,
    });
    // Its working folder outlived it; the next worker's start removes it, and only it.
    const left = readdirSync(tmp);
    expect(left).toEqual([expect.stringMatching(new RegExp(`^${homePrefix(parent.pid)}`))]);
    const ours = mkdtempSync(join(tmp, homePrefix(process.pid)));
    expect(sweepStaleHomes(tmp, memoryLogger())).toBe(1);
    expect(readdirSync(tmp)).toEqual([basename(ours)]);
  });

  test("group fence: the program itself is gone (its children are out of reach, see launch.ts)", async () => {
    const { parent, family } = await startWorkerLike("group");
    const programProc = family.find((p) => p.ppid === parent.pid);
    expect(programProc?.comm).toBe("sleep");
    parent.kill("SIGKILL");
    await parent.exited;
    await waitFor(() => programProc !== undefined && !alive(programProc), {
      what: "the program gone",
      timeoutMs: 5_000,
    });
  });
});

describe("a program that ends leaves nothing running", () => {
  for (const fence of [undefined, "group"] as const) {
    test(`${fence ?? "namespace"} fence: a child it left in the background is killed`, async () => {
      const s = await tempStore();
      const cmd = program("leaves-a-child", `sleep 1000 &\necho '${LINE}'`);
      const { outcome, log } = await run([cmd], {
        store: s,
        ...(fence === undefined ? {} : { settings: { fence } }),
      });
      expect(outcome.kind).toBe("succeeded");
      const pgid = Number(log.lines.find((l) => l.msg === EXEC_STARTED)?.fields.pid);
      expect(pgid).toBeGreaterThan(0);
      await waitFor(
        () => processes().filter((p) => p.pgrp === pgid && p.state !== "Z").length === 0,
        { what: `nothing left in process group ${pgid}`, timeoutMs: 5_000 },
      );
    });
  }
});
