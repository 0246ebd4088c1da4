import * as v from "valibot";
import { QUEUE_NAMES, QUEUES, type QueueName } from "../contracts/queue";
import type { Db, Sql } from "../db/connect";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import {
  OUTBOX_CHANNEL,
  outboxLockPending,
  outboxMarkRejected,
  outboxMarkSent,
  type PendingRow,
} from "../outbox/sql";
import type { QueuePublisher } from "../queue/seam";
import type { Metrics } from "./metrics";

/**
 * The outbox drainer (invariant 4). Each round, in one transaction: lock a
 * batch of pending rows (SKIP LOCKED, so several dispatchers drain side by
 * side), publish them through the queue seam (each row's id as its dedupe
 * id, its `available_at` as when it becomes visible), then mark them sent.
 * A crash before commit leaves them pending for the next round or another
 * dispatcher: at least once. A row that breaks its queue's contract can
 * never be published: it is marked `rejected` with the reason and logged,
 * so it never holds back the rows behind it. It wakes on NOTIFY from outbox
 * inserts, and polls as a backstop.
 */

export const DRAIN_BATCH = 500;
const POLL_MS = 1_000;
const BACKOFF_MS = 500;

/** Logged once per rejected row (tests wait on it). */
export const OUTBOX_ROW_REJECTED = "outbox row breaks its queue contract; rejected";

export type PublisherFor = (tx: Db) => QueuePublisher;

const isQueue = (name: string): name is QueueName => QUEUE_NAMES.some((q) => q === name);

/** The row's queue when the row fits its contract; otherwise why it can never be published. */
function fit(row: PendingRow): { queue: QueueName } | { error: string } {
  const queue = row.queue_name;
  if (!isQueue(queue)) return { error: `no such queue: ${queue}` };
  const r = v.safeParse(QUEUES[queue], row.payload);
  if (r.success) return { queue };
  return { error: `payload breaks the ${queue} contract: ${v.summarize(r.issues)}` };
}

async function publishRows<Q extends QueueName>(pub: QueuePublisher, queue: Q, rows: PendingRow[]) {
  const messages = rows.map((r) => ({
    payload: v.parse(QUEUES[queue], r.payload),
    dedupeId: r.id,
    ...(r.available_at === null ? {} : { availableAt: r.available_at }),
  }));
  await pub.publish(queue, messages);
}

export interface DrainRound {
  published: number;
  rejected: number;
}

/** One round: publishes what fits its contract, rejects what never can. */
export async function outboxDrainOnce(
  sql: Sql,
  p: { limit: number; log: Logger; metrics?: Metrics; publisherFor: PublisherFor },
): Promise<DrainRound> {
  return sql.begin(async (tx): Promise<DrainRound> => {
    const rows = await outboxLockPending(tx, { limit: p.limit });
    const byQueue = new Map<QueueName, PendingRow[]>();
    const rejected: Array<{ id: string; error: string }> = [];
    const sent: string[] = [];
    for (const row of rows) {
      const f = fit(row);
      if ("error" in f) {
        rejected.push({ id: row.id, error: f.error });
        continue;
      }
      const list = byQueue.get(f.queue) ?? [];
      if (list.length === 0) byQueue.set(f.queue, list);
      list.push(row);
      sent.push(row.id);
    }
    const publisher = p.publisherFor(tx);
    for (const [queue, list] of byQueue) await publishRows(publisher, queue, list);
    if (sent.length > 0) failpoint("dispatcher.after_drain_publish");
    await outboxMarkSent(tx, { ids: sent });
    await outboxMarkRejected(tx, { rows: rejected });
    for (const r of rejected)
      p.log.error(OUTBOX_ROW_REJECTED, { outbox_id: r.id, reason: r.error });
    for (const [queue, list] of byQueue) p.metrics?.outboxPublished.inc({ queue }, list.length);
    return { published: sent.length, rejected: rejected.length };
  });
}

/**
 * Runs until `signal` aborts; resolves once the current round has ended.
 * Wakes on a "wake" event from this dispatcher's own task calls, on a NOTIFY
 * from task creation elsewhere, or after a short poll (rows another
 * dispatcher committed and left, e.g. when it died).
 */
export async function runDrainer(
  sql: Sql,
  p: {
    signal: AbortSignal;
    wake: EventTarget;
    log: Logger;
    metrics: Metrics;
    publisherFor: PublisherFor;
  },
): Promise<void> {
  let wake: (() => void) | undefined;
  let notified = false;
  const poke = () => {
    notified = true;
    wake?.();
  };
  const sub = await sql.listen(OUTBOX_CHANNEL, poke);
  p.signal.addEventListener("abort", poke, { once: true });
  p.wake.addEventListener("wake", poke);
  const round = {
    limit: DRAIN_BATCH,
    log: p.log,
    metrics: p.metrics,
    publisherFor: p.publisherFor,
  };
  try {
    while (!p.signal.aborted) {
      notified = false;
      let n = 0;
      let failed = false;
      try {
        const r = await outboxDrainOnce(sql, round);
        n = r.published + r.rejected;
      } catch (err) {
        failed = true;
        p.log.error("outbox drain failed; retrying", { err });
      }
      if (n >= DRAIN_BATCH || (notified && !failed) || p.signal.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, failed ? BACKOFF_MS : POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    p.wake.removeEventListener("wake", poke);
    await sub.unlisten().catch(() => {});
  }
}
