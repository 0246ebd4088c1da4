import { expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { NatsQueue } from "../../src/queue/nats/backend";
import type { QueueBackend } from "../../src/queue/seam";
import { auditProgress } from "../../src/reads/audit";
import { type CheckReport, checkInvariants } from "../../src/verify/checker";
import { liveMessageCount } from "../../src/verify/queues";
import { freshDatabase, type TestDatabase } from "../support/db";
import { startDispatcher, type TestDispatcher } from "../support/dispatcher";
import { TEST_NATS_URL, uniqueNamespace } from "../support/nats";
import { type Role, runHarness, spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";

/**
 * A whole platform for one invariant scenario: separate fresh STATE and DATA
 * databases, its own object store folder, short leases and visibility
 * timeouts, and every role a real OS process (the compiled binary when
 * HARNESS_BIN is set). The checker reads the databases and the queues at
 * the end.
 *
 * The queues are pgqueue in the STATE database, or with TEST_QUEUE=nats the
 * NATS JetStream at TEST_NATS_URL, in a namespace of the platform's own
 * (its streams created at start as `harness migrate` does, deleted at stop):
 * `.ci/run` runs every scenario on both.
 */

export const TEST_QUEUE = testQueue(process.env.TEST_QUEUE);

function testQueue(value: string | undefined): "pgqueue" | "nats" {
  if (value === undefined || value === "" || value === "pgqueue") return "pgqueue";
  if (value === "nats") return "nats";
  throw new Error(`TEST_QUEUE must be pgqueue or nats, got ${JSON.stringify(value)}`);
}

/** The queues of a platform: the backend the checker reads, and the roles' settings for it. */
async function openQueues(
  state: TestDatabase,
  visibilityMs: number,
): Promise<{ queue: QueueBackend; env: Record<string, string>; drop(): Promise<void> }> {
  if (TEST_QUEUE === "pgqueue") {
    return { queue: state.queue(), env: {}, drop: async () => {} };
  }
  const namespace = uniqueNamespace("inv");
  const nats = await NatsQueue.open({ url: TEST_NATS_URL, namespace, name: "invariants" });
  await nats.ensure({ visibilityTimeoutMs: visibilityMs, replicas: 1 });
  return {
    queue: nats,
    env: { QUEUE_URL: TEST_NATS_URL, QUEUE_NAMESPACE: namespace },
    drop: async () => {
      await nats.drop();
      await nats.close();
    },
  };
}

export interface PlatformOptions {
  leaseMs?: number;
  visibilityMs?: number;
  maxAttempts?: number;
  maxReceives?: number;
  env?: Record<string, string>;
  /** Databases to use instead of fresh ones on the test server (e.g. on an embedded PostgreSQL). */
  databases?: { state: TestDatabase; data: TestDatabase };
}

export class TestPlatform {
  readonly roles: Role[] = [];
  readonly dispatchers: TestDispatcher[] = [];
  private constructor(
    readonly state: TestDatabase,
    readonly data: TestDatabase,
    readonly objectDir: string,
    readonly env: Record<string, string>,
    /** The roles' queues (pgqueue or NATS, see TEST_QUEUE): publish duplicates, read depths. */
    readonly queue: QueueBackend,
    private readonly dropQueues: () => Promise<void>,
  ) {}

  static async start(o: PlatformOptions = {}): Promise<TestPlatform> {
    const [state, data] =
      o.databases === undefined
        ? await Promise.all([freshDatabase(), freshDatabase()])
        : [o.databases.state, o.databases.data];
    const objectDir = mkdtempSync(join(tmpdir(), "harness-objects-"));
    const visibilityMs = o.visibilityMs ?? 1000;
    const queues = await openQueues(state, visibilityMs);
    const env = {
      STATE_DATABASE_URL: state.url,
      DATA_DATABASE_URL: data.url,
      OBJECT_STORE_URL: pathToFileURL(objectDir).href,
      INTERNAL_AUTH_TOKEN: `invariants-${crypto.randomUUID()}`,
      LEASE_DURATION_MS: String(o.leaseMs ?? 1500),
      VISIBILITY_TIMEOUT_MS: String(visibilityMs),
      MAX_ATTEMPTS: String(o.maxAttempts ?? 10),
      MAX_RECEIVES: String(o.maxReceives ?? 50),
      LOG_LEVEL: "info",
      ...queues.env,
      ...o.env,
    };
    return new TestPlatform(state, data, objectDir, env, queues.queue, queues.drop);
  }

  /** The first dispatcher's URL (workers use it unless told otherwise). */
  get dispatcherUrl(): string {
    const d = this.dispatchers[0];
    if (d === undefined) throw new Error("no dispatcher started");
    return d.url;
  }

  async startDispatcher(env: Record<string, string> = {}, port?: number): Promise<TestDispatcher> {
    const d = await startDispatcher({
      databaseUrl: this.state.url,
      env: { ...this.env, ...env },
      name: `dispatcher-${this.dispatchers.length + 1}`,
      ...(port === undefined ? {} : { port }),
    });
    this.dispatchers.push(d);
    this.roles.push(d.role);
    return d;
  }

  startWorker(args: string[] = [], env: Record<string, string> = {}): Role {
    const role = spawnHarness(`worker-${this.roles.length}`, ["worker", ...args], {
      ...this.env,
      DISPATCHER_URL: this.dispatcherUrl,
      ...env,
    });
    this.roles.push(role);
    return role;
  }

  startSink(args: string[] = [], env: Record<string, string> = {}): Role {
    const role = spawnHarness(`sink-${this.roles.length}`, ["sink", ...args], {
      ...this.env,
      ...env,
    });
    this.roles.push(role);
    return role;
  }

  async createTasks(
    org: string,
    count: number,
    alerts: number,
    workMs?: number,
  ): Promise<string[]> {
    const args = [
      "task",
      "create",
      "--org",
      org,
      "--alerts",
      String(alerts),
      "--count",
      String(count),
    ];
    if (workMs !== undefined) args.push("--work-ms", String(workMs));
    const r = await runHarness(args, this.env);
    if (r.code !== 0) throw new Error(`task create failed: ${r.stderr}`);
    return r.stdout.trim().split("\n");
  }

  /** Tasks with this payload (any JSON object, for `worker --exec`); their ids. */
  async createPayloadTasks(org: string, payload: object, count = 1): Promise<string[]> {
    const args = ["task", "create", "--org", org, "--payload", JSON.stringify(payload)];
    const r = await runHarness([...args, "--count", String(count)], this.env);
    if (r.code !== 0) throw new Error(`task create failed: ${r.stderr}`);
    return r.stdout.trim().split("\n");
  }

  /** Waits until every task of the org finished and nothing is queued for them, nor left in the queues. */
  async waitQuiet(org: string, ids: readonly string[], timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        const p = await auditProgress(this.state.sql, { orgId: org, taskIds: ids });
        if (p.finished !== ids.length || p.pending !== 0) return false;
        return (await liveMessageCount(this.queue.admin())) === 0;
      },
      { what: `${ids.length} task(s) of ${org} to finish and drain`, timeoutMs, intervalMs: 100 },
    );
  }

  async check(
    org: string,
    options: { poisonTaskIds?: string[]; allowFailed?: boolean } = {},
  ): Promise<CheckReport> {
    return checkInvariants(this.state.sql, this.data.sql, {
      orgId: org,
      queues: this.queue.admin(),
      ...options,
    });
  }

  /** Asserts every invariant, showing the failing ones by name. */
  async expectInvariants(
    org: string,
    options: { poisonTaskIds?: string[] } = {},
  ): Promise<CheckReport> {
    const report = await this.check(org, options);
    expect(report.invariants.filter((i) => !i.ok)).toEqual([]);
    return report;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.roles.map((r) => r.stop("SIGKILL")));
    await Promise.allSettled([this.state.drop(), this.data.drop(), this.dropQueues()]);
    rmSync(this.objectDir, { recursive: true, force: true });
  }
}
