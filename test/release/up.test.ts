import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeUrl } from "../../src/db/connect";
import { useFreshDatabase } from "../support/db";
import { freePort } from "../support/embedded";
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
    expect(up.stdout()).toContain(
      `harness up: stopped; the data stays in ${join(dir, ".harness")}\n`,
    );
  }, 120_000);
});

describe("harness up on a given PostgreSQL", () => {
  const db = useFreshDatabase();

  test("it says the tasks and rows are in that PostgreSQL, not in .harness", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "harness-up-url-"));
    try {
      const r = await runHarness(
        ["up", "--demo", "2", "--workers", "1"],
        { DATABASE_URL: db().url },
        { cwd },
      );
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const where = `the PostgreSQL at ${describeUrl(db().url)}`;
      expect(r.stdout).toContain(`, on ${where}; logs in`);
      expect(r.stdout).toContain(`${where} now holds 2 succeeded task(s) and 20 alert row(s)`);
      expect(r.stdout).toContain(
        `harness up: stopped; tasks and rows stay in ${where}, batches in ${join(cwd, ".harness", "objects")}`,
      );
      expect(r.stdout).not.toContain(".harness now holds");
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);

  test("a first up that fails leaves no .harness behind", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "harness-up-fail-"));
    try {
      const url = `postgres://postgres:pw@127.0.0.1:${await freePort()}/nowhere`;
      const r = await runHarness(["up", "--demo", "1"], { DATABASE_URL: url }, { cwd });
      expect(r.code).toBe(1);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(readdirSync(cwd)).toEqual([]);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 60_000);
});
