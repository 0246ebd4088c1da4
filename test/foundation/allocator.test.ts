import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { PURGE_DELAY_ENV, startsRole } from "../../src/platform/allocator";
import { useTempStore } from "../sink/helpers";
import { useFreshDatabase } from "../support/db";
import { spawnHarness } from "../support/processes";

/**
 * A long-running role executes itself again with mimalloc's purging off
 * (src/platform/allocator.ts): same pid, same arguments, the setting in its
 * environment; a value the user set is kept; other commands are left alone.
 */

const db = useFreshDatabase();
const store = useTempStore();

/** The environment the kernel holds for `pid` now (after any execve). */
function environOf(pid: number): Map<string, string> {
  const pairs = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  return new Map(
    pairs
      .filter((p) => p.includes("="))
      .map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]),
  );
}

async function sinkEnvironment(extra: Record<string, string>): Promise<Map<string, string>> {
  const sink = spawnHarness("sink", ["sink", "--concurrency", "2"], {
    DATABASE_URL: db().url,
    OBJECT_STORE_URL: store().url,
    LOG_LEVEL: "info",
    ...extra,
  });
  try {
    // Logged by the process that runs the role, after any execve.
    await sink.waitForLog((l) => l.msg === "sink started", "sink started", 30_000);
    const env = environOf(sink.proc.pid);
    const cmdline = readFileSync(`/proc/${sink.proc.pid}/cmdline`, "utf8").split("\0");
    expect(cmdline.slice(-3, -1)).toEqual(["--concurrency", "2"]);
    return env;
  } finally {
    expect(await sink.stop()).toBe(0);
  }
}

describe("the roles' allocator setting", () => {
  test("a role runs, under the pid it was started as, with purging off and its own arguments", async () => {
    const env = await sinkEnvironment({});
    expect(env.get(PURGE_DELAY_ENV)).toBe("-1");
    expect(env.get("DATABASE_URL")).toBe(db().url);
  });

  test("a value the user set is kept", async () => {
    const env = await sinkEnvironment({ [PURGE_DELAY_ENV]: "250" });
    expect(env.get(PURGE_DELAY_ENV)).toBe("250");
  });

  test("only the long-running roles are executed again", () => {
    expect(startsRole(["dispatcher"])).toBe(true);
    expect(startsRole(["worker", "--concurrency", "4"])).toBe(true);
    expect(startsRole(["sink", "--until-idle"])).toBe(true);
    for (const argv of [
      [],
      ["--version"],
      ["task", "create"],
      ["up"],
      ["verify"],
      ["status"],
      ["ui"],
    ]) {
      expect(startsRole(argv)).toBe(false);
    }
  });
});
