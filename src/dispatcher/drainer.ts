import * as v from "valibot";
import { QUEUE_NAMES, QUEUES, type QueueName } from "../contracts/queue";
import type { Db, Sql } from "../db/connect";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import { publishBatch } from "../queue";
import type { Metrics } from "./metrics";
import { OUTBOX_CHANNEL, outboxLockPending, outboxMarkSent, type PendingRow } from "./sql/outbox";

/**
 * The outbox drainer (invariant 4). Each round, in one transaction: lock a
 * batch of pending rows (SKIP LOCKED, so several dispatchers drain side by
 * side), publish them to their queues, then mark them sent. A crash before
 * commit leaves them pending for the next round or another dispatcher: at
 * least once. It wakes on NOTIFY from outbox inserts, and polls as a backstop.
 */

export const DRAIN_BATCH = 500;
const POLL_MS = 1_000;
const BACKOFF_MS = 500;

const isQueue = (name: string): name is QueueName => QUEUE_NAMES.some((q) => q === name);

async function publishRows<Q extends QueueName>(tx: Db, queue: Q, rows: PendingRow[]) {
  const payloads = rows.map((r) => v.parse(QUEUES[queue], r.payload));
  await publishBatch(tx, queue, payloads);
}

/** One round; returns how many rows it published. */
export async function outboxDrainOnce(
  sql: Sql,
  p: { limit: number; log: Logger; metrics?: Metrics },
): Promise<number> {
  return sql.begin(async (tx) => {
    const rows = await outboxLockPending(tx, { limit: p.limit });
    const byQueue = new Map<QueueName, PendingRow[]>();
    const sent: string[] = [];
    for (const row of rows) {
      const fits = isQueue(row.queue_name) && v.is(QUEUES[row.queue_name], row.payload);
      if (!isQueue(row.queue_name) || !fits) {
        // Left pending and visible in `harness status`: never published, never lost.
        p.log.error("outbox row breaks its queue contract", {
          outbox_id: row.id,
          queue: row.queue_name,
        });
        continue;
      }
      byQueue.set(row.queue_name, [...(byQueue.get(row.queue_name) ?? []), row]);
      sent.push(row.id);
    }
    for (const [queue, list] of byQueue) await publishRows(tx, queue, list);
    if (sent.length > 0) failpoint("dispatcher.after_drain_publish");
    await outboxMarkSent(tx, { ids: sent });
    for (const [queue, list] of byQueue) p.metrics?.outboxPublished.inc({ queue }, list.length);
    return sent.length;
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
  p: { signal: AbortSignal; wake: EventTarget; log: Logger; metrics: Metrics },
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
  try {
    while (!p.signal.aborted) {
      notified = false;
      let n = 0;
      let failed = false;
      try {
        n = await outboxDrainOnce(sql, { limit: DRAIN_BATCH, log: p.log, metrics: p.metrics });
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
