import * as v from "valibot";
import { BufferMessage, type QueueName } from "../contracts/queue";
import type { Sql } from "../db/connect";
import { describeError } from "../describe-error";
import { createLogger } from "../log";
import type { RoleProcess } from "../platform/supervisor";
import type { Outgoing, QueuePublisher } from "../queue/seam";
import { auditSentBufferPayloads } from "../reads/audit";
import { sleep } from "../sleep";
import type { VerifyBroker } from "./broker";
import { type ChaosEvent, describeEvent } from "./chaos";
import type { FaultNet } from "./net";
import { Pauser } from "./pause";
import type { VerifyPostgres } from "./postgres";

/**
 * Plays fault events on a running pipeline and keeps the schedule as it was
 * played: when each event really started, and what showed it took effect
 * (the pid /proc saw stopped, how many connections were reset, the
 * postmaster's new pid and start time). Faults with a length end by
 * themselves; `settle` waits for the last to end.
 */

const log = createLogger("verify");

/** How long a duplicate's publish is retried through an outage of the queues. */
const PUBLISH_RETRY_MS = 15_000;

export interface Injected {
  kills: number;
  duplicateWakeups: number;
  duplicateBuffers: number;
  pauses: number;
  networkFaults: number;
  postgresRestarts: number;
  /** Nodes of verify's own broker cluster killed with -9 (and started again). */
  brokerKills: number;
}

export type Evidence = Record<string, string | number | boolean>;

export interface PlayedEvent {
  /** The planned event, as in the schedule. */
  event: string;
  /** When it really started, from the start of the schedule. */
  atMs: number;
  /** What it did and how we know, or why it was skipped. */
  detail: string;
  /** The same as data (the process state /proc saw, connections reset, postmaster pids). */
  evidence: Evidence;
}

type Outcome = { detail: string; evidence?: Evidence };

export interface FaultTargets {
  state: Sql;
  /** Publishes the duplicates. */
  publisher: QueuePublisher;
  roles: ReadonlyMap<string, RoleProcess>;
  net: FaultNet | undefined;
  postgres: VerifyPostgres | undefined;
  /** verify's own broker cluster (`--nats-cluster`), whose nodes broker-kill kills. */
  broker: VerifyBroker | undefined;
  /** The tasks created so far (duplicates pick among them). */
  taskIds(): readonly string[];
}

export class Injector {
  readonly injected: Injected = {
    kills: 0,
    duplicateWakeups: 0,
    duplicateBuffers: 0,
    pauses: 0,
    networkFaults: 0,
    postgresRestarts: 0,
    brokerKills: 0,
  };
  readonly played: PlayedEvent[] = [];
  private readonly pauser = new Pauser();
  private restarting: Promise<void> = Promise.resolve();
  private brokerKilling: Promise<void> = Promise.resolve();
  private networkEndsAt = 0;

  constructor(private readonly t: FaultTargets) {}

  /** Plays one event now; `t0` is when the schedule started. */
  async apply(e: ChaosEvent, t0: number): Promise<void> {
    const event = describeEvent(e);
    const entry: PlayedEvent = { event, atMs: Date.now() - t0, detail: "", evidence: {} };
    this.played.push(entry);
    log.info("chaos", { event: entry.event });
    try {
      Object.assign(entry, await this.play(e, entry));
    } catch (err) {
      entry.detail = `failed: ${describeError(err)}`;
      log.warn("chaos event failed", { event: entry.event, err });
    }
  }

  /** Waits until every pause, network fault, restart and broker node kill has ended. */
  async settle(): Promise<void> {
    await Promise.all([this.restarting, this.brokerKilling]);
    const until = Math.max(this.pauser.endsAt, this.networkEndsAt);
    await sleep(until - Date.now());
  }

  /** Continues every paused role now. */
  resumeAll(): void {
    this.pauser.resumeAll(this.t.roles.values());
  }

  private async play(e: ChaosEvent, entry: PlayedEvent): Promise<Outcome> {
    switch (e.kind) {
      case "kill":
        return this.kill(e.role);
      case "pause":
        return this.pause(e.role, e.ms);
      case "duplicate_wakeups":
        return this.duplicateWakeups(e.taskIndexes);
      case "duplicate_buffer":
        return this.duplicateBuffer(e.pick);
      case "network":
        return this.network(e);
      case "postgres_restart":
        return this.restart(e, entry);
      case "broker_kill":
        return this.brokerKill(e, entry);
    }
  }

  private role(name: string): RoleProcess {
    const role = this.t.roles.get(name);
    if (role === undefined) throw new Error(`no role ${name}`);
    return role;
  }

  private kill(name: string): Outcome {
    const role = this.role(name);
    const pid = role.pid;
    if (!role.running) return { detail: "not running: skipped" };
    role.signal("SIGKILL");
    this.injected.kills++;
    return { detail: `pid ${pid} killed`, evidence: { pid } };
  }

  private async pause(name: string, ms: number): Promise<Outcome> {
    const r = await this.pauser.pause(this.role(name), ms);
    if (r === undefined) return { detail: "not running: skipped" };
    if (r.state === "T") this.injected.pauses++;
    return { detail: `pid ${r.pid} stopped: /proc state ${r.state}`, evidence: r };
  }

  /**
   * Publishes a duplicate, trying again for a while when the queues cannot
   * take it now (a broker node failing over, PostgreSQL restarting): the
   * schedule's own faults must not keep its duplicates out.
   */
  private async publish<Q extends QueueName>(queue: Q, messages: Outgoing<Q>[]): Promise<void> {
    const deadline = Date.now() + PUBLISH_RETRY_MS;
    for (;;) {
      try {
        await this.t.publisher.publish(queue, messages);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  private async duplicateWakeups(indexes: readonly number[]): Promise<Outcome> {
    const ids = this.t.taskIds();
    const payloads = indexes.flatMap((i) => {
      const id = ids[i % Math.max(1, ids.length)];
      return id === undefined ? [] : [{ task_id: id }];
    });
    await this.publish(
      "task_wakeup",
      payloads.map((payload) => ({ payload })),
    );
    this.injected.duplicateWakeups += payloads.length;
    return { detail: `${payloads.length} wakeup(s) published` };
  }

  private async duplicateBuffer(pick: number): Promise<Outcome> {
    const sent = await auditSentBufferPayloads(this.t.state, { taskIds: this.t.taskIds() });
    const parsed = v.safeParse(BufferMessage, sent[pick % Math.max(1, sent.length)]);
    if (!parsed.success) return { detail: "no buffer message sent yet: skipped" };
    await this.publish("buffer_queue", [{ payload: parsed.output }]);
    this.injected.duplicateBuffers++;
    const { task_id, attempt } = parsed.output;
    return { detail: `buffer message of task ${task_id} attempt ${attempt} published again` };
  }

  private network(e: Extract<ChaosEvent, { kind: "network" }>): Outcome {
    if (this.t.net === undefined) return { detail: "no fault proxy: skipped" };
    const r = this.t.net.apply(e.link, e);
    this.networkEndsAt = Math.max(this.networkEndsAt, r.endsAt);
    this.injected.networkFaults++;
    const what = { latency: "delayed", blackhole: "held", reset: "reset (RST)" }[e.fault];
    const detail = `${r.links} link(s), ${r.connections} open connection(s) ${what}`;
    return { detail, evidence: { links: r.links, connections: r.connections } };
  }

  /** Restarts run one after another, in the background: the schedule goes on meanwhile. */
  private restart(e: Extract<ChaosEvent, { kind: "postgres_restart" }>, entry: PlayedEvent) {
    const pg = this.t.postgres;
    if (pg === undefined) return { detail: "no embedded PostgreSQL: skipped" };
    this.restarting = this.restarting.then(async () => {
      try {
        const r = await pg.restart(e.mode, e.downMs);
        entry.evidence = { ...r };
        entry.detail = `postmaster ${r.pidBefore} → ${r.pidAfter}, started ${r.startedBefore} → ${r.startedAfter}${r.crashRecovery ? ", crash recovery ran" : ""}`;
        this.injected.postgresRestarts++;
      } catch (err) {
        entry.detail = `failed: ${describeError(err)}`;
        log.error("restarting PostgreSQL failed", { err });
      }
    });
    return { detail: "restarting" };
  }

  /**
   * One broker node at a time, in the background: kill -9, down for
   * `downMs`, started again on its port and store. A node still down when
   * the next kill is due waits for it, so a cluster of three keeps its
   * quorum.
   */
  private brokerKill(e: Extract<ChaosEvent, { kind: "broker_kill" }>, entry: PlayedEvent) {
    const broker = this.t.broker;
    if (broker === undefined || broker.nodes === 0)
      return { detail: "no broker cluster of verify's own: skipped" };
    this.brokerKilling = this.brokerKilling.then(async () => {
      try {
        const r = await broker.killNode(e.target, e.downMs);
        entry.evidence = { ...r };
        entry.detail = `${r.node} pid ${r.pidBefore} killed${r.wasLeader ? " (the stream leader)" : ""}, back as pid ${r.pidAfter}`;
        this.injected.brokerKills++;
      } catch (err) {
        entry.detail = `failed: ${describeError(err)}`;
        log.error("killing a broker node failed", { err });
      }
    });
    return { detail: "killing" };
  }
}
