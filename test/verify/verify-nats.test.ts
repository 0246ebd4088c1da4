import { afterAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { ChaosEvent } from "../../src/verify/chaos";
import type { VerifyReport } from "../../src/verify/run";
import { freshDatabase, type TestDatabase } from "../support/db";
import { TEST_NATS_URL, useNatsQueue } from "../support/nats";
import { runHarness } from "../support/processes";

/**
 * `harness verify` with its queues on NATS, as a user runs it. On a broker
 * the user has (QUEUE_URL), a run gets a namespace of its own: it never
 * touches the configured namespace's messages, its streams are gone
 * afterwards, and the fault proxy sits between the roles and the broker.
 * With --nats-cluster it brings three nats-server nodes of its own (R3
 * streams) and may kill -9 one mid-run; every invariant still holds.
 */

const dir = mkdtempSync(join(tmpdir(), "harness-verify-nats-"));
const dbs: TestDatabase[] = [];
// The namespace a deployment uses: verify must leave it alone.
const deployment = useNatsQueue("verify_deploy");
afterAll(async () => {
  await Promise.allSettled(dbs.map((d) => d.drop()));
  rmSync(dir, { recursive: true, force: true });
});

async function verify(name: string, args: string[], schedule: ChaosEvent[], nats: boolean) {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(schedule));
  const db = await freshDatabase();
  dbs.push(db);
  const env: Record<string, string> = { LOG_LEVEL: "warn", DATABASE_URL: db.url };
  if (nats)
    Object.assign(env, { QUEUE_URL: TEST_NATS_URL, QUEUE_NAMESPACE: deployment().namespace });
  const full = ["verify", ...args, "--json", "--logs", join(dir, name), "--schedule", file];
  const r = await runHarness(full, env);
  let report: VerifyReport;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`verify printed no report (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return { code: r.code, report };
}

const failing = (r: VerifyReport) => r.check.invariants.filter((i) => !i.ok).map((i) => i.name);

/** The streams on the shared server whose names start with `prefix`. */
async function streamsNamed(prefix: string): Promise<string[]> {
  const nc = await connect({ servers: TEST_NATS_URL.replace("nats://", "") });
  try {
    const names: string[] = [];
    for await (const s of (await jetstreamManager(nc)).streams.list()) names.push(s.config.name);
    return names.filter((n) => n.startsWith(prefix));
  } finally {
    await nc.close();
  }
}

const ARGS = ["--tasks", "20", "--alerts", "3", "--work-ms", "500", "--timeout", "90"];

describe("harness verify on NATS", () => {
  test("QUEUE_URL: a namespace of the run's own, removed after; a black hole between a worker and the broker; every invariant holds", async () => {
    const theirs = deployment().queue;
    const [kept] = await theirs
      .publisher()
      .publish("task_wakeup", [{ payload: { task_id: randomUUID() } }]);
    const schedule: ChaosEvent[] = [
      { atMs: 1500, kind: "network", link: "worker-1→broker", fault: "blackhole", ms: 4000 },
      { atMs: 2000, kind: "duplicate_wakeups", taskIndexes: [0, 1, 2, 3] },
      { atMs: 2500, kind: "kill", role: "sink" },
    ];
    const { code, report } = await verify("queue-url", ARGS, schedule, true);
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.check.tasks).toMatchObject({ total: 20, succeeded: 20 });
    expect(report.check.rows).toMatchObject({ expected: 60, found: 60 });
    const namespace = /namespace (verify_\w+)/.exec(report.queues)?.[1];
    expect(namespace).toBeDefined();
    expect(namespace).not.toBe(deployment().namespace);
    // The black hole held the worker's live broker connection: the proxy is on that link.
    expect(report.played[0]?.evidence).toMatchObject({ links: 1 });
    expect(Number(report.played[0]?.evidence.connections)).toBeGreaterThan(0);
    expect(report.injected).toMatchObject({ networkFaults: 1, duplicateWakeups: 4, kills: 1 });
    expect(await streamsNamed(namespace ?? "verify_")).toEqual([]);
    // The deployment's namespace: its message untouched.
    const c = await theirs.consumer("task_wakeup", { visibilityTimeoutMs: 30_000, maxReceives: 5 });
    expect((await c.receive(10)).map((m) => m.id)).toEqual([String(kept)]);
  }, 120_000);

  test("--nats-cluster: the node leading task_wakeup killed with -9 mid-run and started again; every task succeeded, exact rows, no stale writes", async () => {
    const schedule: ChaosEvent[] = [
      { atMs: 1500, kind: "broker_kill", target: "leader", downMs: 3000 },
      { atMs: 2000, kind: "kill", role: "worker-2" },
    ];
    const { code, report } = await verify("cluster", [...ARGS, "--nats-cluster"], schedule, false);
    expect(failing(report)).toEqual([]);
    expect(code).toBe(0);
    expect(report.queues).toContain("a 3-node cluster of verify's own");
    expect(report.injected.brokerKills).toBe(1);
    const [kill] = report.played;
    expect(kill?.evidence).toMatchObject({ wasLeader: true });
    expect(kill?.evidence.pidAfter).not.toBe(kill?.evidence.pidBefore);
    expect(report.check.tasks).toMatchObject({ total: 20, succeeded: 20 });
    expect(report.check.rows).toMatchObject({ expected: 60, found: 60, missing: 0 });
    expect(report.check.fencing.staleWrites).toBe(0);
  }, 120_000);

  test("broker-kill needs --nats-cluster", async () => {
    const r = await runHarness(["verify", "--chaos", "1", "--faults", "broker-kill"], {
      DATABASE_URL: "postgres://127.0.0.1:1/none",
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "harness verify: --faults broker-kill needs --nats-cluster (verify kills only its own broker nodes)",
    );
  });
});
