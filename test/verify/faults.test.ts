import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { ROLE_READY_LOGS } from "../../src/platform/launcher";
import { procState } from "../../src/platform/procfs";
import { Pauser } from "../../src/verify/pause";
import { startVerifyPostgres, type VerifyPostgres } from "../../src/verify/postgres";
import { TestPlatform } from "../invariants/platform";
import { waitFor } from "../support/wait";

/**
 * Each fault kind on its own, against real processes, proven by what the
 * operating system and PostgreSQL say rather than by a verdict: a paused role
 * is in state T in /proc and answers nothing until continued; a restarted
 * PostgreSQL has a new postmaster pid and start time (and replays its WAL
 * after a crash), keeps what it committed, and a pool reconnects by itself.
 */

let p: TestPlatform;
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 2000 });
});
afterAll(async () => {
  await p.stop();
});

const answers = (url: string) =>
  fetch(`${url}/healthz`, { signal: AbortSignal.timeout(300) }).then(
    (r) => r.ok,
    () => false,
  );

describe("faults, one by one", () => {
  test("each role logs the ready line the supervisor waits for", async () => {
    const d = await p.startDispatcher();
    const worker = p.startWorker();
    const sink = p.startSink();
    await d.role.waitForLog((l) => l.msg === ROLE_READY_LOGS.dispatcher, "ready");
    await worker.waitForLog((l) => l.msg === ROLE_READY_LOGS.worker, "ready");
    await sink.waitForLog((l) => l.msg === ROLE_READY_LOGS.sink, "ready");
  }, 30_000);

  test("a pause stops the process (/proc state T, no answer) for its length, then it runs and answers again", async () => {
    const d = p.dispatchers[0] ?? (await p.startDispatcher());
    const proc = d.role.proc;
    const role = { pid: proc.pid, signal: (sig: NodeJS.Signals) => proc.kill(sig) };
    expect(await answers(d.url)).toBe(true);
    const pauser = new Pauser();
    const started = performance.now();
    expect(await pauser.pause(role, 1_500)).toEqual({ pid: proc.pid, state: "T" });
    expect(procState(proc.pid)).toBe("T");
    expect(await answers(d.url)).toBe(false);
    await waitFor(() => procState(proc.pid) !== "T", { what: "SIGCONT", timeoutMs: 5_000 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_490);
    await waitFor(() => answers(d.url), { what: "the dispatcher to answer again" });
  }, 30_000);
});

describe("PostgreSQL restarts (verify --embedded)", () => {
  let pg: VerifyPostgres;
  beforeAll(async () => {
    pg = await startVerifyPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  for (const mode of ["fast", "immediate"] as const) {
    test(`${mode === "fast" ? "a fast" : "an immediate"} stop and start: new postmaster, new start time, nothing committed lost, the pool reconnects by itself`, async () => {
      const sql = connect(pg.url(), { name: "test-restart", max: 2 });
      try {
        await sql`CREATE TABLE IF NOT EXISTS kept (n int)`;
        await sql`INSERT INTO kept VALUES (1)`;
        const [before] = await sql`SELECT count(*)::int AS n FROM kept`;
        const r = await pg.restart(mode, 200);
        expect(r.pidAfter).not.toBe(r.pidBefore);
        expect(r.startedAfter > r.startedBefore).toBe(true);
        // Only a crash makes PostgreSQL replay its WAL.
        expect(r.crashRecovery).toBe(mode === "immediate");
        const [after] = await waitFor(
          () => sql`SELECT count(*)::int AS n FROM kept`.catch(() => undefined),
          {
            what: "the pool to reconnect",
            timeoutMs: 10_000,
          },
        );
        expect(after).toEqual(before);
        const [started] = await sql`SELECT pg_postmaster_start_time()::text AS t`;
        expect(new Date(String(started?.t)).toISOString()).toBe(r.startedAfter);
      } finally {
        await sql.end();
      }
    }, 60_000);
  }
});
