import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { QUEUE_NAMES } from "../../contracts/queue";
import { createLogger } from "../../log";
import type { Names, QueueNames } from "./names";
import { isMissingResource } from "./store";

/**
 * The NATS side of `harness migrate`: creates (or brings up to date) every
 * stream and durable consumer of a namespace. Idempotent; run by the owner
 * user, the only one the broker lets create streams (deploy/nats/).
 */

const log = createLogger("queue");

/** `Nats-Msg-Id` repeats within this window store nothing (the outbox drainer relies on it). */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** A live message's last error is kept this long after it was recorded. */
export const ERROR_RETENTION_MS = 14 * 24 * 3_600_000;
/** The delayed consumer's ack wait: a mover that died gives its delayed messages back after this. */
const DELAYED_ACK_WAIT_MS = 30_000;

export interface EnsureOptions {
  /** The ack wait of each queue's consumer: VISIBILITY_TIMEOUT_MS. */
  visibilityTimeoutMs: number;
  /** Stream replicas: 1 on a single server, 3 on a cluster. */
  replicas: number;
}

function streamConfigs(
  q: QueueNames,
  replicas: number,
): Array<Partial<StreamConfig> & { name: string }> {
  const base = { storage: StorageType.File, num_replicas: replicas };
  return [
    {
      ...base,
      name: q.stream,
      subjects: [q.ready, q.delayed],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    },
    {
      ...base,
      name: q.errorStream,
      subjects: [q.errorWildcard],
      retention: RetentionPolicy.Limits,
      max_msgs_per_subject: 1,
      max_age: nanos(ERROR_RETENTION_MS),
    },
    {
      ...base,
      name: q.dlqStream,
      subjects: [q.dlqWildcard],
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    },
  ];
}

function consumerConfigs(
  q: QueueNames,
  visibilityTimeoutMs: number,
): Array<Partial<ConsumerConfig> & { durable_name: string }> {
  const base = {
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_deliver: -1,
    max_ack_pending: -1,
  };
  return [
    {
      ...base,
      durable_name: q.consumer,
      filter_subject: q.ready,
      ack_wait: nanos(visibilityTimeoutMs),
    },
    {
      ...base,
      durable_name: q.delayedConsumer,
      filter_subject: q.delayed,
      ack_wait: nanos(DELAYED_ACK_WAIT_MS),
    },
  ];
}

/** What changed: "created …", "updated …", or undefined when it was as wanted. */
type Change = string | undefined;

async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<Change> {
  const info = await jsm.streams.info(cfg.name).catch(missingAsNull);
  if (info === null) {
    await createOrFind(
      () => jsm.streams.add(cfg),
      () => jsm.streams.info(cfg.name),
    );
    return `created stream ${cfg.name}`;
  }
  const c = info.config;
  const same =
    c.num_replicas === cfg.num_replicas &&
    JSON.stringify(c.subjects) === JSON.stringify(cfg.subjects) &&
    (cfg.max_age === undefined || c.max_age === cfg.max_age);
  if (same) return undefined;
  await jsm.streams.update(cfg.name, { ...c, ...cfg });
  return `updated stream ${cfg.name}`;
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  cfg: Partial<ConsumerConfig> & { durable_name: string },
): Promise<Change> {
  const info = await jsm.consumers.info(stream, cfg.durable_name).catch(missingAsNull);
  if (info === null) {
    await createOrFind(
      () => jsm.consumers.add(stream, cfg),
      () => jsm.consumers.info(stream, cfg.durable_name),
    );
    return `created consumer ${cfg.durable_name}`;
  }
  if (info.config.ack_wait === cfg.ack_wait) return undefined;
  await jsm.consumers.update(stream, cfg.durable_name, { ack_wait: cfg.ack_wait });
  return `updated consumer ${cfg.durable_name}`;
}

function missingAsNull(err: unknown): null {
  if (isMissingResource(err)) return null;
  throw err;
}

/** Creates; when that fails, fine if it exists now (another `migrate` created it meanwhile). */
async function createOrFind(create: () => Promise<unknown>, find: () => Promise<unknown>) {
  try {
    await create();
  } catch (err) {
    const found = await find().then(
      () => true,
      () => false,
    );
    if (!found) throw err;
  }
}

/** Brings every stream and consumer of the namespace to what it should be; returns what changed. */
export async function ensureQueues(
  jsm: JetStreamManager,
  names: Names,
  o: EnsureOptions,
): Promise<string[]> {
  const changes: string[] = [];
  for (const queue of QUEUE_NAMES) {
    const q = names.of(queue);
    try {
      for (const cfg of streamConfigs(q, o.replicas))
        changes.push((await ensureStream(jsm, cfg)) ?? "");
      for (const cfg of consumerConfigs(q, o.visibilityTimeoutMs)) {
        changes.push((await ensureConsumer(jsm, q.stream, cfg)) ?? "");
      }
    } catch (cause) {
      throw new Error(`creating the streams of queue ${queue} (namespace ${names.namespace})`, {
        cause,
      });
    }
  }
  const done = changes.filter((c) => c !== "");
  for (const change of done) log.info("queue streams", { change, namespace: names.namespace });
  return done;
}

/** Deletes every stream of a namespace (their consumers go with them). For tests and teardown. */
export async function dropQueues(jsm: JetStreamManager, names: Names): Promise<void> {
  for (const stream of names.streams()) {
    try {
      await jsm.streams.delete(stream);
    } catch (err) {
      if (!isMissingResource(err)) throw err;
    }
  }
}
