import { describe, expect, test } from "bun:test";
import { chaosSchedule, FAULT_KINDS } from "../../src/verify/chaos";
import { VERIFY_LOG } from "../../src/verify/run";
import { useTempStore } from "../sink/helpers";
import { useFreshDatabase } from "../support/db";
import { runHarness, spawnHarness } from "../support/processes";
import { tempDir } from "../support/temp";
import { waitFor } from "../support/wait";

/** `harness verify` as a user runs it: a real process against a migrated database. */

const db = useFreshDatabase();
const foreignStore = useTempStore();
/** `--logs` for a run: the run's role logs and objects, in a folder removed after the tests. */
const logs = () => ["--logs", tempDir("harness-verify-test-")];

function scheduleOf(stdout: string): unknown {
  const parsed: unknown = JSON.parse(stdout);
  return typeof parsed === "object" && parsed !== null && "schedule" in parsed
    ? parsed.schedule
    : undefined;
}

/** Exit code, and stderr's tail (and the report's) when the code is not the one expected. */
function outcome(r: { code: number; stderr: string; stdout?: string }, expected = 0) {
  const tails = `${r.stderr.slice(-2000)}${(r.stdout ?? "").slice(-3000)}`;
  return { code: r.code, stderr: r.code === expected ? "" : tails };
}

describe("harness verify", () => {
  test("with a chaos seed: roles killed and restarted, duplicates injected, every invariant holds, exit 0", async () => {
    const args = ["verify", "--tasks", "40", "--alerts", "5", "--chaos", "3", "--json"];
    const r = await runHarness([...args, "--timeout", "150", ...logs()], {
      DATABASE_URL: db().url,
      LOG_LEVEL: "warn",
    });
    expect(outcome(r)).toEqual({ code: 0, stderr: "" });
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
    expect(JSON.stringify(report)).toContain("kill -9");
    // Every kind that applies without --embedded, each counted.
    expect(report).toMatchObject({ faults: ["kill", "duplicate", "pause", "network"] });
    const injected =
      typeof report === "object" && report !== null && "injected" in report ? report.injected : {};
    expect(Object.keys(injected ?? {}).sort()).toEqual([
      "brokerKills",
      "duplicateBuffers",
      "duplicateWakeups",
      "kills",
      "networkFaults",
      "pauses",
      "postgresRestarts",
    ]);
  }, 200_000);

  test("the schedule is a function of the seed alone", () => {
    const plan = (seed: number) =>
      chaosSchedule({
        seed,
        kinds: FAULT_KINDS,
        roles: ["a", "b", "c"],
        links: ["a→postgres", "b→postgres", "b→a"],
        tasks: 5,
        windowMs: 6_000,
        events: 12,
        leaseMs: 2_000,
      });
    expect(plan(11)).toEqual(plan(11));
    expect(plan(11)).not.toEqual(plan(12));
    expect(plan(11)).toHaveLength(12);
  });

  test("one run per database at a time; a second run with the same seed replays the same schedule", async () => {
    const env = { DATABASE_URL: db().url, LOG_LEVEL: "info" };
    const args = ["verify", "--tasks", "5", "--alerts", "1", "--chaos", "11", "--json"];
    const first = spawnHarness(
      "verify-1",
      [...args, "--work-ms", "0", "--timeout", "50", ...logs()],
      env,
    );
    await first.waitForLog(
      (l) => l.msg === VERIFY_LOG.tasksCreated,
      "the first run to start",
      30_000,
    );
    const refused = await runHarness(args, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(
      "harness verify: another harness verify is running against this database",
    );
    expect(outcome({ code: await first.exited, stderr: first.stderr() })).toEqual({
      code: 0,
      stderr: "",
    });
    const second = await runHarness([...args, "--work-ms", "0", "--timeout", "50", ...logs()], env);
    expect(outcome(second)).toEqual({ code: 0, stderr: "" });
    expect(scheduleOf(first.stdout())).toHaveLength(12);
    expect(scheduleOf(second.stdout)).toEqual(scheduleOf(first.stdout()));
  }, 120_000);

  test("with its private object store, it refuses while another pipeline's roles are connected", async () => {
    const worker = spawnHarness("foreign-worker", ["worker"], {
      DATABASE_URL: db().url,
      DISPATCHER_URL: "http://127.0.0.1:9",
      INTERNAL_AUTH_TOKEN: "a-foreign-pipeline-token",
      OBJECT_STORE_URL: foreignStore().url,
    });
    try {
      await waitFor(
        async () => {
          if (worker.proc.exitCode !== null) throw new Error(`worker exited: ${worker.stderr()}`);
          const [row] = await db().sql`
            SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'harness-worker'`;
          return row !== undefined && row.n > 0;
        },
        { what: "the foreign worker to connect", timeoutMs: 30_000 },
      );
      const r = await runHarness(["verify", "--tasks", "1"], { DATABASE_URL: db().url });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("roles of another pipeline are connected to this database");
      expect(r.stderr).toContain("harness-worker");
    } finally {
      await worker.stop();
    }
  }, 60_000);

  test("without a database it says which variable is missing", async () => {
    const r = await runHarness(["verify"], {});
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("harness verify: DATABASE_URL (or STATE_DATABASE_URL) is not set");
  });
});
