import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChaosEvent } from "../../src/verify/chaos";
import { FENCING_INVARIANT } from "../../src/verify/checker";
import type { VerifyReport } from "../../src/verify/run";
import { freshDatabase, type TestDatabase } from "../support/db";
import { runHarness } from "../support/processes";

/**
 * `harness verify` with replayed schedules (`--schedule FILE`), as a user
 * runs it. Removing a guard must make a run fail: with the heartbeat's fence
 * taken away (failswitch dispatcher.unfenced_heartbeat) a pause past the
 * lease is caught as a stale lease renewal; with reconnects taken away
 * (db.no_reconnect) a reset of every link leaves the pipeline stuck. With
 * the guards in place the same runs hold every invariant, and show that the
 * fault happened: the process was in state T, the connections were reset and
 * the roles saw ECONNRESET, PostgreSQL came back with a new postmaster.
 */

const dir = mkdtempSync(join(tmpdir(), "harness-verify-faults-"));
const dbs: TestDatabase[] = [];
afterAll(async () => {
  await Promise.allSettled(dbs.map((d) => d.drop()));
  rmSync(dir, { recursive: true, force: true });
});

async function verify(
  name: string,
  args: string[],
  o: { schedule?: ChaosEvent[]; env?: Record<string, string>; embedded?: boolean } = {},
) {
  const logs = join(dir, name);
  const full = ["verify", ...args, "--json", "--logs", logs];
  if (o.schedule !== undefined) {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(o.schedule));
    full.push("--schedule", file);
  }
  let env: Record<string, string> = { LOG_LEVEL: "warn", ...o.env };
  if (o.embedded !== true) {
    const db = await freshDatabase();
    dbs.push(db);
    env = { ...env, DATABASE_URL: db.url };
  }
  const r = await runHarness(full, env);
  let report: VerifyReport;
  try {
    // The report is the command's own JSON output (src/verify/run.ts VerifyReport).
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`verify printed no report (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return { code: r.code, report, logs };
}

const failing = (r: VerifyReport) => r.check.invariants.filter((i) => !i.ok).map((i) => i.name);
const roleLogs = (logs: string) =>
  readdirSync(logs)
    .filter((f) => f.endsWith(".log"))
    .map((f) => readFileSync(join(logs, f), "utf8"))
    .join("\n");

/**
 * 12 tasks on two workers of 8 slots: worker-1 holds at least 4 when it is
 * paused; worker-2 is free again after its own (3 s of work) and takes them
 * over once their leases (2 s) expired, long before worker-1 wakes at 10.5 s.
 */
const PAUSE: ChaosEvent[] = [{ atMs: 1500, kind: "pause", role: "worker-1", ms: 9000 }];
const PAUSE_ARGS = ["--tasks", "12", "--alerts", "2", "--work-ms", "3000", "--timeout", "90"];
const RESET: ChaosEvent[] = [{ atMs: 1500, kind: "network", link: "all", fault: "reset", ms: 300 }];
const RESET_ARGS = ["--tasks", "20", "--alerts", "2", "--work-ms", "500"];

describe("verify: removing a guard makes a run fail", () => {
  test("a worker paused past its lease: fenced out, its renewals refused; every invariant holds", async () => {
    const { code, report } = await verify("pause", PAUSE_ARGS, { schedule: PAUSE });
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.played).toMatchObject([{ evidence: { state: "T" } }]);
    expect(report.injected.pauses).toBe(1);
    // Attempt 2 took over the paused worker's tasks; the lease tap saw renewals, none stale.
    expect(report.check.attempts.max).toBe(2);
    expect(report.check.fencing.renewalsSeen).toBeGreaterThan(0);
    expect(report.check.fencing.staleRenewals).toBe(0);
  }, 120_000);

  test("the same pause with the heartbeat's fence switched off: the checker reports stale renewals", async () => {
    const env = { HARNESS_FAILPOINTS: "dispatcher.unfenced_heartbeat" };
    const { code, report } = await verify("pause-unfenced", PAUSE_ARGS, { schedule: PAUSE, env });
    expect(code).toBe(1);
    expect(report.check.attempts.max).toBe(2); // attempt 2 took over, as without the switch
    expect(failing(report)).toEqual([FENCING_INVARIANT]);
    expect(report.check.fencing.staleRenewals).toBeGreaterThan(0);
  }, 120_000);

  test("every link reset: the roles saw ECONNRESET, came back by themselves, every invariant holds", async () => {
    const { code, report, logs } = await verify("reset", [...RESET_ARGS, "--timeout", "60"], {
      schedule: RESET,
    });
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.injected.networkFaults).toBe(1);
    expect(Number(report.played[0]?.evidence.connections)).toBeGreaterThan(0);
    expect(roleLogs(logs)).toContain("ECONNRESET");
    // Nobody was restarted: every role came back by itself.
    expect(Object.values(report.restarts)).toEqual([0, 0, 0, 0, 0]);
  }, 120_000);

  test("the same resets with reconnects switched off: the pipeline never finishes", async () => {
    const env = { HARNESS_FAILPOINTS: "db.no_reconnect" };
    const { code, report } = await verify(
      "reset-no-reconnect",
      [...RESET_ARGS, "--timeout", "20"],
      {
        schedule: RESET,
        env,
      },
    );
    expect(code).toBe(1);
    expect(report.timedOut).toBe(true);
    expect(failing(report)).toContain("every task finished (no task stuck)");
  }, 120_000);
});

describe("verify --embedded", () => {
  test("PostgreSQL restarted mid-run, fast and by a crash: new postmaster each time, the roles reconnect, every invariant holds", async () => {
    const schedule: ChaosEvent[] = [
      { atMs: 1500, kind: "postgres_restart", mode: "immediate", downMs: 800 },
      { atMs: 4000, kind: "postgres_restart", mode: "fast", downMs: 300 },
    ];
    const args = ["--tasks", "30", "--alerts", "3", "--work-ms", "300", "--timeout", "90"];
    const { code, report } = await verify("embedded", ["--embedded", ...args], {
      schedule,
      embedded: true,
    });
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.embedded).toBe(true);
    expect(report.injected.postgresRestarts).toBe(2);
    for (const [i, e] of report.played.entries()) {
      expect(e.evidence.pidAfter).not.toBe(e.evidence.pidBefore);
      expect(String(e.evidence.startedAfter) > String(e.evidence.startedBefore)).toBe(true);
      expect(e.evidence.crashRecovery).toBe(i === 0);
    }
  }, 150_000);
});

describe("verify --duration (a soak)", () => {
  test("tasks created at a steady rate the whole time, faults throughout, every role's RSS and fds at start and end", async () => {
    const args = ["--duration", "15s", "--rate", "4", "--chaos", "5", "--alerts", "2"];
    const { code, report } = await verify("soak", [...args, "--timeout", "90"]);
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.durationMs).toBe(15_000);
    // 4 a second for 15 s, within a step of the feed.
    expect(report.tasksCreated).toBeGreaterThanOrEqual(56);
    expect(report.tasksCreated).toBeLessThanOrEqual(60);
    const db = dbs.at(-1);
    if (db === undefined) throw new Error("no database");
    const [spread] = await db.sql`
      SELECT extract(epoch FROM max(created_at) - min(created_at))::float8 AS s FROM state.tasks
      WHERE org_id = ${report.orgId}`;
    expect(Number(spread?.s)).toBeGreaterThan(13);
    // Faults all through the 15 s, not only at the start.
    expect(Math.max(...report.played.map((e) => e.atMs))).toBeGreaterThan(10_000);
    expect(Object.keys(report.resources).sort()).toEqual([
      "dispatcher-1",
      "dispatcher-2",
      "sink",
      "worker-1",
      "worker-2",
    ]);
    for (const { start, end } of Object.values(report.resources)) {
      for (const sample of [start, end]) {
        expect(sample?.rssKb).toBeGreaterThan(0);
        expect(sample?.fds).toBeGreaterThan(0);
      }
    }
  }, 150_000);
});
