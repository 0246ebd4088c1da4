import { describe, expect, test } from "bun:test";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";

/** `harness verify` as a user runs it: a real process against a migrated database. */

const db = useFreshDatabase();

describe("harness verify", () => {
  test("with a chaos seed: roles killed and restarted, duplicates injected, every invariant holds, exit 0", async () => {
    const r = await runHarness(
      ["verify", "--tasks", "40", "--alerts", "5", "--chaos", "3", "--json"],
      {
        DATABASE_URL: db().url,
        LOG_LEVEL: "warn",
      },
    );
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr.slice(-2000) }).toEqual({
      code: 0,
      stderr: "",
    });
    const report: unknown = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      seed: 3,
      timedOut: false,
      check: {
        ok: true,
        tasks: { total: 40, succeeded: 40 },
        rows: { expected: 200, found: 200, missing: 0, unexpected: 0 },
      },
    });
    const text = JSON.stringify(report);
    expect(text).toContain("kill -9");
  }, 120_000);

  test("the same seed gives the same schedule", async () => {
    const env = { DATABASE_URL: db().url, LOG_LEVEL: "warn" };
    const runs = await Promise.all(
      [1, 2].map(() =>
        runHarness(
          ["verify", "--tasks", "5", "--alerts", "1", "--chaos", "11", "--json", "--work-ms", "0"],
          env,
        ),
      ),
    );
    const schedules = runs.map((r) => {
      const parsed: unknown = JSON.parse(r.stdout);
      return typeof parsed === "object" && parsed !== null && "schedule" in parsed
        ? parsed.schedule
        : undefined;
    });
    expect(schedules[0]).toBeDefined();
    expect(schedules[0]).toEqual(schedules[1]);
  }, 120_000);

  test("without a database it says which variable is missing", async () => {
    const r = await runHarness(["verify"], {});
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("harness verify: DATABASE_URL (or STATE_DATABASE_URL) is not set");
  });
});
