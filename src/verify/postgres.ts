import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { connect } from "../db/connect";
import { type EmbeddedOptions, freePort, startEmbeddedPostgres } from "../platform/embedded";
import { sleep } from "../sleep";
import type { RestartMode } from "./chaos";

/**
 * `harness verify --embedded`: a PostgreSQL of verify's own, in a temporary
 * folder removed at the end, which the fault schedule may restart — a fast
 * stop (SIGINT to the postmaster, what `pg_ctl stop -m fast` sends: every
 * session is terminated, then a checkpoint) or an immediate stop (SIGQUIT,
 * `-m immediate`: a crash, recovered from the WAL at the next start) — on the
 * same port, so every role's URL stays good.
 */

/** How a restart shows: a new postmaster, a new start time, and after a crash, WAL recovery. */
export interface RestartEvidence {
  pidBefore: number;
  pidAfter: number;
  startedBefore: string;
  startedAfter: string;
  crashRecovery: boolean;
}

export interface VerifyPostgres {
  url(database?: string): string;
  /** Stops PostgreSQL, waits `downMs`, starts it again. */
  restart(mode: RestartMode, downMs: number): Promise<RestartEvidence>;
  stop(): Promise<void>;
}

const Identity = v.object({ started: v.date(), dir: v.string() });

export async function startVerifyPostgres(): Promise<VerifyPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "harness-verify-pg-"));
  // As root the server runs as the postgres user, which must reach its folder.
  chmodSync(dir, 0o755);
  const lines: string[] = [];
  const options: EmbeddedOptions = {
    dir,
    password: crypto.randomUUID(),
    port: await freePort(),
    // Durable settings: with synchronous_commit=off (`fast`), an immediate stop lost
    // commits already acknowledged (56 of 2,208 single-row inserts in a trial).
    fast: false,
    onLog: (line) => lines.push(line),
  };
  let pg = await startEmbeddedPostgres(options).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  const url = (database = "postgres") => pg.url(database);

  /** The postmaster's pid (its pid file's first line) and start time. */
  const identity = async () => {
    const sql = connect(url(), { name: "verify-restart", max: 1 });
    try {
      const [row] = await sql`
        SELECT pg_postmaster_start_time() AS started, current_setting('data_directory') AS dir`;
      const id = v.parse(Identity, row);
      const pid = Number(readFileSync(join(id.dir, "postmaster.pid"), "utf8").split("\n")[0]);
      return { pid, started: id.started };
    } finally {
      await sql.end();
    }
  };

  return {
    url,
    async restart(mode, downMs) {
      const before = await identity();
      // SIGQUIT first; stop() then waits for the exit (its SIGINT is ignored once shutting down).
      if (mode === "immediate") process.kill(before.pid, "SIGQUIT");
      await pg.stop();
      await sleep(downMs);
      lines.length = 0;
      pg = await startEmbeddedPostgres(options);
      const after = await identity();
      return {
        pidBefore: before.pid,
        pidAfter: after.pid,
        startedBefore: before.started.toISOString(),
        startedAfter: after.started.toISOString(),
        // PostgreSQL's own words when it replays the WAL after a crash.
        crashRecovery: lines.some((l) => l.includes("automatic recovery in progress")),
      };
    },
    async stop() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
