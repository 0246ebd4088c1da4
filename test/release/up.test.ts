import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runHarness, spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";

/**
 * `harness up --demo` on the embedded defaults, as a newcomer runs it: no
 * database URL, a fresh folder, stdout not a terminal.
 */

const dir = mkdtempSync(join(tmpdir(), "harness-up-"));
// The embedded PostgreSQL runs as the postgres user when we are root: it must reach the folder.
chmodSync(dir, 0o755);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function processesUsing(path: string): string[] {
  const ps = Bun.spawnSync(["ps", "-eo", "pid,args"]);
  return ps.stdout
    .toString()
    .split("\n")
    .filter((line) => line.includes(path) && !line.includes("ps -eo"));
}

describe("harness up --demo", () => {
  test("20 demo tasks on embedded PostgreSQL: summary with 20 succeeded and exact rows, nothing left running", async () => {
    const r = await runHarness(["up", "--demo", "20"], {}, { cwd: dir });
    expect({ code: r.code, stderrTail: r.code === 0 ? "" : r.stderr.slice(-2000) }).toEqual({
      code: 0,
      stderrTail: "",
    });
    expect(r.stdout).toContain("created 20 demo task(s) with 10 alert(s) each");
    expect(r.stdout).toMatch(/^tasks \d+\/20 done/m);
    expect(r.stdout).toContain(
      "summary: 20 succeeded, 0 failed of 20 tasks; 200 rows ingested (expected 200); 0 dead letters",
    );
    expect(r.stdout).not.toContain("\x1b[");
    expect(processesUsing(join(dir, ".harness"))).toEqual([]);
  }, 120_000);

  test("a second up resumes on the same data folder", async () => {
    const r = await runHarness(["up", "--demo", "3", "--workers", "1"], {}, { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "summary: 3 succeeded, 0 failed of 3 tasks; 30 rows ingested (expected 30)",
    );
    expect(r.stdout).toContain("now holds 23 succeeded task(s) and 230 alert row(s)");
    expect(processesUsing(join(dir, ".harness"))).toEqual([]);
  }, 120_000);

  test("without --demo it runs until Ctrl-C, then stops every role and the embedded PostgreSQL", async () => {
    const up = spawnHarness("up", ["up", "--workers", "1"], {}, { cwd: dir });
    await waitFor(() => up.stdout().includes("press Ctrl-C to stop"), {
      what: "the platform to be up",
      timeoutMs: 60_000,
    });
    expect(processesUsing(join(dir, ".harness")).length).toBeGreaterThan(0);
    expect(await up.stop("SIGINT")).toBe(0);
    expect(processesUsing(join(dir, ".harness"))).toEqual([]);
  }, 120_000);
});
