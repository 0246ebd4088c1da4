import { describe, expect, test } from "bun:test";
import type { AuditAttempt, AuditOutbox, AuditTask } from "../../src/reads/audit";
import { checkFencing, type FencingInput } from "../../src/verify/fencing";

/**
 * The fencing check alone, on hand-made rows: every way an attempt could
 * change something after it was fenced out is found, and nothing legal is
 * called stale — down to the microsecond.
 */

const T = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const S = 1_800_000_000_000_000; // a moment, in µs since the epoch
const LEASE_MS = 2_000;

const task: AuditTask = {
  id: T,
  org_id: "o",
  status: "succeeded",
  attempt: 2,
  payload: {},
  last_error: null,
};
const attempts: AuditAttempt[] = [
  { task_id: T, attempt: 1, claimed_us: S, ended_us: S + 5_000_000, outcome: "fenced" },
  {
    task_id: T,
    attempt: 2,
    claimed_us: S + 5_000_000,
    ended_us: S + 7_000_000,
    outcome: "completed",
  },
];
let nextId = 1;
const row = (queue_name: string, attempt: number | null, created_us: number): AuditOutbox => ({
  id: String(nextId++),
  queue_name,
  task_id: T,
  attempt,
  status: "sent",
  created_us,
});
/** A good history: attempt 1 published, its lease expired, the reaper woke the task, attempt 2 finished it. */
const good = (): AuditOutbox[] => {
  nextId = 1;
  return [
    row("buffer_queue", 1, S + 1_000_000),
    row("task_wakeup", 1, S + 5_000_001), // the reaper's, committed after the claim began: not attempt 1's
    row("buffer_queue", 2, S + 6_000_000),
    row("task_completed", 2, S + 7_000_000),
  ];
};
const check = (outbox: AuditOutbox[], extra: Partial<FencingInput> = {}) =>
  checkFencing({ tasks: [task], attempts, outbox, ...extra });
const renewal = (attempt: number, renewedUs: number) => ({
  kind: "heartbeat" as const,
  taskId: T,
  attempt,
  leaseExpiresAt: new Date((renewedUs + LEASE_MS * 1000) / 1000),
});

describe("fencing check", () => {
  test("a good history has no finding", () => {
    expect(check(good())).toEqual({
      staleWrites: [],
      staleRenewals: [],
      renewalsSeen: 0,
      badCompletions: [],
    });
  });

  test("attempt 1's write one microsecond after attempt 2's claim is stale; one before is not", () => {
    expect(check([...good(), row("buffer_queue", 1, S + 5_000_000)]).staleWrites).toEqual([
      `${T}#1 buffer_queue`,
    ]);
    expect(
      check([
        ...good().slice(0, 3),
        row("buffer_queue", 1, S + 4_999_999),
        row("task_completed", 2, S + 7_000_000),
      ]).staleWrites,
    ).toEqual([]);
  });

  test("a write after the completion is stale, whatever its timestamp says; so is a write by an attempt never claimed", () => {
    // Committed after the completion (a later outbox id) though its transaction began before.
    expect(check([...good(), row("buffer_queue", 2, S + 6_500_000)]).staleWrites).toEqual([
      `${T}#2 buffer_queue`,
    ]);
    expect(
      check([
        ...good().slice(0, 3),
        row("buffer_queue", 3, S + 6_000_000),
        row("task_completed", 2, S + 7_000_000),
      ]).staleWrites,
    ).toEqual([`${T}#3 buffer_queue`]);
  });

  test("a completion by another attempt than the last, or twice, or of an unfinished task, is found", () => {
    const twice = [...good(), row("task_completed", 2, S + 7_000_001)];
    expect(check(twice).badCompletions).toHaveLength(1);
    const byFirst = good().map((o) =>
      o.queue_name === "task_completed" ? { ...o, attempt: 1 } : o,
    );
    expect(check(byFirst).badCompletions).toHaveLength(1);
    const running = checkFencing({
      tasks: [{ ...task, status: "running" }],
      attempts,
      outbox: good(),
    });
    expect(running.badCompletions).toHaveLength(1);
  });

  test("a lease renewal granted to attempt 1 after attempt 2 was claimed is stale; before, it is not", () => {
    const observed = {
      leaseMs: LEASE_MS,
      grants: [renewal(1, S + 2_000_000), renewal(2, S + 6_000_000)],
    };
    expect(check(good(), { observed })).toMatchObject({ staleRenewals: [], renewalsSeen: 2 });
    observed.grants.push(renewal(1, S + 5_001_000));
    expect(check(good(), { observed }).staleRenewals).toEqual([`${T}#1 heartbeat`]);
  });

  test("an attempt's own ending, or its failure's wakeup, after the next claim is stale", () => {
    const failedAt = (us: number): AuditAttempt[] => [
      { task_id: T, attempt: 1, claimed_us: S, ended_us: us, outcome: "failed" },
      ...attempts.slice(1),
    ];
    const late = checkFencing({
      tasks: [task],
      attempts: failedAt(S + 5_000_000),
      outbox: [...good(), { ...row("task_wakeup", 1, S + 5_000_000), id: "0" }],
    });
    expect(late.staleWrites.sort()).toEqual([`${T}#1 failed`, `${T}#1 task_wakeup`]);
    // Failing one microsecond before the claim is the attempt's right.
    const inTime = checkFencing({
      tasks: [task],
      attempts: failedAt(S + 4_999_999),
      // Written before attempt 2 completed the task: an outbox id below its completion's.
      outbox: [...good(), { ...row("task_wakeup", 1, S + 4_999_999), id: "0" }],
    });
    expect(inTime.staleWrites).toEqual([]);
  });

  test("renewals of another run's tasks are not this run's business", () => {
    const other = { ...renewal(1, S + 9_000_000), taskId: "0e91c98c-a5d8-4f93-ad51-7d6814253644" };
    expect(
      check(good(), { observed: { leaseMs: LEASE_MS, grants: [other] } }).staleRenewals,
    ).toEqual([]);
  });
});
