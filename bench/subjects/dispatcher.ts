import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { ClaimResponse } from "../../src/contracts/http";
import { connect, type Sql } from "../../src/db/connect";
import { option, subjectMain } from "../lib/protocol";
import {
  freePort,
  INTERNAL_TOKEN,
  roleEnv,
  type Stoppable,
  spawnHarness,
  spawnScript,
  waitHttp,
} from "../lib/roles";
import { runWrk } from "../lib/wrk";

/**
 * Workload 4, one subject: wrk (-t1, `connections`, `seconds`) against either
 * `harness dispatcher` (bare 0) or bench/dispatcher/baseline.ts (bare 1), on
 * heartbeats (endpoint 0: rotating over `count` live leases) or claims
 * (endpoint 1: each request claims a different queued task). Items: 2xx answers.
 */

const BENCH_DIR = join(import.meta.dir, "..");

async function insertQueued(sql: Sql, n: number): Promise<string[]> {
  const rows = await sql`
    INSERT INTO state.tasks (org_id, payload)
    SELECT 'bench', '{"alerts":1}'::jsonb FROM generate_series(1, ${n})
    RETURNING id::text AS id`;
  await sql`VACUUM ANALYZE state.tasks`;
  return rows.map((r) => String(r.id)).sort(() => Math.random() - 0.5);
}

/** Claims every task through the dispatcher: one "<body>\t<capability>" line each. */
async function claimThroughDispatcher(base: string, ids: readonly string[]): Promise<string[]> {
  const lines: string[] = [];
  let next = 0;
  const claimer = async () => {
    for (let i = next++; i < ids.length; i = next++) {
      const res = await fetch(`${base}/internal/task-claim`, {
        method: "POST",
        headers: { authorization: `Bearer ${INTERNAL_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ task_id: ids[i] }),
      });
      if (res.status !== 200) throw new Error(`claim: ${res.status} ${await res.text()}`);
      const c = v.parse(ClaimResponse, await res.json());
      const body = { task_id: c.task_id, attempt: c.attempt, lease_token: c.lease_token };
      lines.push(`${JSON.stringify(body)}\t${c.capability_token}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, claimer));
  return lines;
}

/** The same leases taken directly in SQL, for the bare endpoint (which has no tokens). */
async function claimInSql(sql: Sql, ids: readonly string[]): Promise<string[]> {
  const rows = await sql`
    UPDATE state.tasks SET status = 'running', attempt = 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() + interval '10 minutes'
    WHERE id = ANY(${ids}::uuid[])
    RETURNING id::text AS task_id, attempt, lease_token::text AS lease_token`;
  return rows.map((r) => `${JSON.stringify({ ...r })}\t-`);
}

subjectMain(async (params) => {
  const bare = option(params, "bare") === 1;
  const claims = option(params, "endpoint") === 1;
  const seconds = option(params, "seconds");
  const connections = option(params, "connections");
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-dispatcher-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = roleEnv({ url: params.url, storeDir: dir, port });
  const sql = connect(params.url, { name: "bench-dispatcher", max: 2 });
  let role: Stoppable | undefined;
  try {
    role = bare
      ? spawnScript("baseline", join(BENCH_DIR, "dispatcher/baseline.ts"), env)
      : spawnHarness("dispatcher", ["dispatcher"], env);
    await waitHttp(base, "/healthz", role);
    // Claims: enough queued tasks that every request of the run claims a fresh one.
    const ids = await insertQueued(sql, claims ? params.count : Math.min(params.count, 2000));
    let wrkEnv: Record<string, string>;
    if (claims) {
      writeFileSync(join(dir, "ids"), `${ids.join("\n")}\n`);
      wrkEnv = { IDS_FILE: join(dir, "ids"), INTERNAL_AUTH_TOKEN: bare ? "" : INTERNAL_TOKEN };
    } else {
      const lines = bare ? await claimInSql(sql, ids) : await claimThroughDispatcher(base, ids);
      writeFileSync(join(dir, "hb"), `${lines.join("\n")}\n`);
      wrkEnv = { HB_FILE: join(dir, "hb"), NO_TOKEN: bare ? "1" : "0" };
    }
    const path = claims ? "/internal/task-claim" : "/v1/task/heartbeat";
    const r = await runWrk({
      script: claims ? "claim.lua" : "heartbeat.lua",
      url: `${base}${path}`,
      connections,
      seconds,
      env: wrkEnv,
    });
    if (r.requests - r.non2xx <= 0) throw new Error(`no 2xx answer: ${JSON.stringify(r)}`);
    return {
      items: r.requests - r.non2xx,
      seconds: r.seconds,
      extra: { p50_ms: r.p50Ms, p99_ms: r.p99Ms, non2xx: r.non2xx, socket_errors: r.errors },
    };
  } finally {
    await role?.stop("SIGTERM");
    await sql.end({ timeout: 1 });
    rmSync(dir, { recursive: true, force: true });
  }
});
