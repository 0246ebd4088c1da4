import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../config";
import { createLogger } from "../log";
import { type NatsCluster, startNatsCluster } from "../platform/nats-server";
import { migrateQueues } from "../queue/migrate";
import { NatsQueue } from "../queue/nats/backend";
import { describeNatsUrl } from "../queue/nats/connect";
import { sleep } from "../sleep";

/**
 * verify's queues on a broker — QUEUE_URL=nats://…, or `--nats-cluster`:
 * three nats-server processes of verify's own on loopback, routed to each
 * other, whose streams are replicated three times. Either way a run gets a
 * namespace of its own, so it never sees another run's (or a deployment's)
 * messages: its streams are created at the start, as `harness migrate`
 * does, and deleted at the end. A cluster's nodes are what the
 * `broker-kill` fault kills (-9), one at a time, each started again after a
 * while on the same port and store.
 */

const log = createLogger("verify");

export interface VerifyBroker {
  /** The configuration the run uses: QUEUE_URL and the run's own QUEUE_NAMESPACE. */
  cfg: Config;
  /** How many nodes `killNode` may pick from (0: a broker verify does not own). */
  nodes: number;
  /** Where the queues are, for the report (credentials left out). */
  where: string;
  /**
   * kill -9 one node (by index, or the one leading the task_wakeup stream),
   * wait `downMs`, start it again; what showed it happened.
   */
  killNode(target: number | "leader", downMs: number): Promise<BrokerKillEvidence>;
  /** Deletes the run's streams; stops a cluster verify started. */
  close(): Promise<void>;
}

export interface BrokerKillEvidence {
  node: string;
  pidBefore: number;
  pidAfter: number;
  /** The node led the work stream of task_wakeup when it was killed. */
  wasLeader: boolean;
}

/** A namespace of this run's own: `verify_<time>_<random>` (within the 32 characters allowed). */
export function runNamespace(started: number): string {
  return `verify_${started.toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * The run's broker, its streams created; undefined when the queues are
 * pgqueue (QUEUE_URL unset and no cluster asked for).
 */
export async function openVerifyBroker(
  cfg: Config,
  o: { cluster: boolean; started: number },
): Promise<VerifyBroker | undefined> {
  if (!o.cluster && cfg.queue.url === undefined) return undefined;
  const dir = o.cluster ? mkdtempSync(join(tmpdir(), "harness-verify-nats-")) : undefined;
  let cluster: NatsCluster | undefined;
  try {
    if (dir !== undefined) cluster = await startNatsCluster({ dir, name: "verify" });
    const url = cluster?.url ?? cfg.queue.url ?? "";
    const run: Config = { ...cfg, queue: { url, namespace: runNamespace(o.started) } };
    const migrated = await migrateQueues(run);
    log.info("verify queues", { migrated });
    return brokerOf(run, cluster, dir);
  } catch (err) {
    await cluster?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function brokerOf(
  cfg: Config,
  cluster: NatsCluster | undefined,
  dir: string | undefined,
): VerifyBroker {
  const { url = "", namespace } = cfg.queue;
  const nodes = cluster?.nodes.length ?? 0;
  const own = nodes > 0 ? `, a ${nodes}-node cluster of verify's own` : "";
  return {
    cfg,
    nodes,
    where: `NATS at ${describeNatsUrl(url)}, namespace ${namespace}${own}`,
    async killNode(target, downMs) {
      const leader = await streamLeader(cfg);
      const all = cluster?.nodes ?? [];
      const node =
        target === "leader"
          ? (all.find((n) => n.name === leader) ?? all[0])
          : all[target % Math.max(1, all.length)];
      if (node === undefined) throw new Error("no broker node of verify's own to kill");
      const wasLeader = leader === node.name;
      const pidBefore = node.pid;
      await node.kill();
      await sleep(downMs);
      await node.restart();
      return { node: node.name, pidBefore, pidAfter: node.pid, wasLeader };
    },
    async close() {
      try {
        const q = await NatsQueue.open({ url, namespace, name: "verify-drop" });
        await q.drop().finally(() => q.close());
      } catch (err) {
        log.warn("deleting verify's streams failed", { namespace, err });
      }
      await cluster?.stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The node that leads the task_wakeup work stream now (undefined if it cannot be asked). */
async function streamLeader(cfg: Config): Promise<string | undefined> {
  const { url = "", namespace } = cfg.queue;
  try {
    const q = await NatsQueue.open({ url, namespace, name: "verify-leader" });
    try {
      return (await q.streamInfo("task_wakeup")).cluster?.leader;
    } finally {
      await q.close();
    }
  } catch {
    return undefined;
  }
}
