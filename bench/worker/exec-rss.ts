/**
 * `harness worker --exec` with a program printing 10 million alert lines:
 * the worker process's peak RSS (VmHWM from /proc, read while it runs)
 * against the size of the output it streamed into the file store, and lines
 * per second from claim to complete. A real dispatcher and a real worker
 * (`bun src/cli.ts`, or HARNESS_BIN), no sink: what is measured is the
 * worker's side. PostgreSQL: BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres (a fresh database in it).
 *
 *   bun bench/worker/exec-rss.ts [--lines 10000000]
 *
 * About 2 GB of batches at 10M lines (190 bytes a stored line) in a
 * temporary folder, removed afterwards; MAX_BATCHES_PER_ATTEMPT is raised
 * to let one attempt publish all of them.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "../../src/db/connect";
import { freePort } from "../../test/support/embedded";
import { type Role, runHarness, spawnHarness } from "../../test/support/processes";
import { waitFor } from "../../test/support/wait";

const { values } = parseArgs({ options: { lines: { type: "string", default: "10000000" } } });
const LINES = Number(values.lines);
const ADMIN = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const LINE = `{"source":"bench","severity":"low","title":"line of a long output","occurred_at":"2024-01-01T00:00:00Z"}`;

function dbUrl(name: string): string {
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

const name = `harness_bench_exec_${process.pid}`;
const admin = connect(ADMIN, { name: "bench-admin", max: 1 });
await admin`CREATE DATABASE ${admin(name)}`;
const dir = mkdtempSync(join(tmpdir(), "harness-bench-exec-"));
const port = await freePort();
const env = {
  DATABASE_URL: dbUrl(name),
  INTERNAL_AUTH_TOKEN: "bench-internal-token-0123456789",
  OBJECT_STORE_URL: pathToFileURL(join(dir, "store")).href,
  PORT: String(port),
  DISPATCHER_URL: `http://127.0.0.1:${port}`,
  MAX_BATCHES_PER_ATTEMPT: "1000",
  LOG_LEVEL: "warn",
};
const sql = connect(env.DATABASE_URL, { name: "bench", max: 1 });
let dispatcher: Role | undefined;
let worker: Role | undefined;
try {
  const printer = join(dir, "print.sh");
  writeFileSync(printer, `#!/bin/sh\nyes '${LINE}' | head -n ${LINES}\n`);
  chmodSync(printer, 0o755);
  if ((await runHarness(["migrate"], env)).code !== 0) throw new Error("migrate failed");
  dispatcher = spawnHarness("dispatcher", ["dispatcher"], env);
  await waitFor(async () => (await fetch(`${env.DISPATCHER_URL}/readyz`).catch(() => null))?.ok, {
    what: "dispatcher ready",
    timeoutMs: 20_000,
  });
  const created = await runHarness(["task", "create", "--org", "bench", "--payload", "{}"], env);
  if (created.code !== 0) throw new Error(`task create: ${created.stderr}`);
  const started = performance.now();
  worker = spawnHarness("worker", ["worker", "--exec", printer, "--task-timeout", "2h"], env);
  const pid = worker.proc.pid;
  let peakKb = 0;
  await waitFor(
    async () => {
      peakKb = Math.max(peakKb, vmHwmKb(pid) ?? 0);
      const [t] = await sql`SELECT status::text AS status FROM state.tasks`;
      if (t?.status === "failed") throw new Error("the task failed");
      return t?.status === "succeeded";
    },
    { what: "the task to succeed", timeoutMs: 3_600_000, intervalMs: 200 },
  );
  peakKb = Math.max(peakKb, vmHwmKb(pid) ?? 0);
  const seconds = (performance.now() - started) / 1000;
  const [b] = await sql`
    SELECT count(*)::int AS batches, coalesce(sum((payload->>'batch_size_bytes')::bigint), 0)::float8 AS bytes
    FROM state.outbox WHERE queue_name = 'buffer_queue'`;
  const mib = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
  process.stdout.write(
    `${JSON.stringify({
      lines: LINES,
      batches: b?.batches,
      output_mib: mib(Number(b?.bytes)),
      worker_peak_rss_mib: mib(peakKb * 1024),
      seconds: Math.round(seconds * 10) / 10,
      lines_per_second: Math.round(LINES / seconds),
    })}\n`,
  );
} finally {
  await worker?.stop("SIGTERM");
  await dispatcher?.stop("SIGTERM");
  await sql.end();
  await admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`;
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
