import * as v from "valibot";
import { QUEUE_NAMES, QUEUES, type QueueName } from "../contracts/queue";
import type { Db, Sql } from "../db/connect";
import { errorChain, isDataException, isTransientDbError } from "../db/errors";
import { describeError } from "../describe-error";
import { failpoint } from "../failpoints";
import type { Logger } from "../log";
import {
  outboxDedupeId,
  outboxMarkRejected,
  outboxPendingIds,
  outboxTakePending,
  type PendingRow,
} from "../outbox/sql";
import { MessageRefusedError, type Outgoing, type QueuePublisher } from "../queue/seam";
import type { Metrics } from "./metrics";

/**
 * One round of the outbox drainer (invariant 4). In one transaction: take a
 * batch of pending rows (locked SKIP LOCKED, so several dispatchers drain
 * side by side, and marked sent by the same statement, which saves a
 * statement per round), publish them through the queue seam (each row's
 * outboxDedupeId as its dedupe id, its `available_at` as when it becomes
 * visible), then commit: no one sees a row sent before its publish. A crash
 * or a failed publish before commit leaves them pending for the next round
 * or another dispatcher: at least once.
 *
 * A row that can never be published is marked `rejected` with the reason
 * and logged, so it never holds back the rows behind it: one that breaks its
 * queue's contract, found before publishing; one the backend refuses for
 * good (MessageRefusedError, or a data exception of the database), found by
 * retrying a failed round row by row. A transient failure (the database or
 * the broker unreachable) fails the round, retried whole; any other failure
 * of one row leaves that row pending (logged) while the rows around it are
 * published.
 */

export const DRAIN_BATCH = 500;

/** Logged once per rejected row (tests wait on it). */
export const OUTBOX_ROW_REJECTED = "outbox row can never be published; rejected";
/** A round failed for another reason than an outage: its rows are published one by one. */
export const OUTBOX_ROUND_ISOLATING = "outbox round failed; publishing its rows one by one";
/** A row failed on its own, neither transient nor permanent: left pending. */
export const OUTBOX_ROW_FAILED = "outbox row failed to publish; left pending";

export type PublisherFor = (tx: Db) => QueuePublisher;

export interface DrainRound {
  published: number;
  rejected: number;
}

export interface DrainParams {
  limit: number;
  log: Logger;
  metrics?: Metrics;
  publisherFor: PublisherFor;
}

const isQueue = (name: string): name is QueueName => QUEUE_NAMES.some((q) => q === name);

/** A queue's rows: the messages of those that fit its contract, and why the others never can. */
interface Sorted<Q extends QueueName> {
  messages: Outgoing<Q>[];
  rejected: Array<{ id: string; error: string }>;
}

/** Each row checked against its queue's contract once; what breaks it is rejected. */
function sortRows<Q extends QueueName>(queue: Q, rows: readonly PendingRow[]): Sorted<Q> {
  const out: Sorted<Q> = { messages: [], rejected: [] };
  for (const row of rows) {
    const r = v.safeParse(QUEUES[queue], row.payload);
    if (!r.success) {
      const error = `payload breaks the ${queue} contract: ${v.summarize(r.issues)}`;
      out.rejected.push({ id: row.id, error });
      continue;
    }
    out.messages.push({
      payload: r.output,
      dedupeId: outboxDedupeId(row),
      ...(row.available_at === null ? {} : { availableAt: row.available_at }),
    });
  }
  return out;
}

/** True when publishing the row again can never succeed. */
const permanent = (err: unknown): boolean =>
  [...errorChain(err)].some((e) => e instanceof MessageRefusedError) || isDataException(err);

/** The rows of each known queue, oldest first; rows of no queue rejected. */
function byQueue(rows: readonly PendingRow[]) {
  const queues = new Map<QueueName, PendingRow[]>();
  const rejected: Array<{ id: string; error: string }> = [];
  for (const row of rows) {
    const queue = row.queue_name;
    if (!isQueue(queue)) {
      rejected.push({ id: row.id, error: `no such queue: ${queue}` });
      continue;
    }
    const list = queues.get(queue) ?? [];
    if (list.length === 0) queues.set(queue, list);
    list.push(row);
  }
  return { queues, rejected };
}

/** Publishes one queue's rows that fit its contract; returns how many, and the rows rejected. */
async function publishQueue<Q extends QueueName>(
  pub: QueuePublisher,
  queue: Q,
  rows: readonly PendingRow[],
) {
  const sorted = sortRows(queue, rows);
  if (sorted.messages.length > 0) await pub.publish(queue, sorted.messages);
  return { published: sorted.messages.length, rejected: sorted.rejected };
}

/** Takes rows with `take`, publishes what fits its contract, rejects what never can: one transaction. */
async function drainTaken(
  sql: Sql,
  p: DrainParams,
  take: (tx: Db) => Promise<PendingRow[]>,
): Promise<DrainRound> {
  return sql.begin(async (tx): Promise<DrainRound> => {
    const { queues, rejected } = byQueue(await take(tx));
    const publisher = p.publisherFor(tx);
    const published = new Map<QueueName, number>();
    for (const [queue, list] of queues) {
      const r = await publishQueue(publisher, queue, list);
      rejected.push(...r.rejected);
      if (r.published > 0) published.set(queue, r.published);
    }
    if (published.size > 0) failpoint("dispatcher.after_drain_publish");
    await outboxMarkRejected(tx, { rows: rejected, taken: true });
    for (const r of rejected)
      p.log.error(OUTBOX_ROW_REJECTED, { outbox_id: r.id, reason: r.error });
    let total = 0;
    for (const [queue, n] of published) {
      p.metrics?.outboxPublished.inc({ queue }, n);
      total += n;
    }
    return { published: total, rejected: rejected.length };
  });
}

/** One round: the oldest `limit` pending rows together; row by row if that fails for another reason than an outage. */
export async function outboxDrainOnce(sql: Sql, p: DrainParams): Promise<DrainRound> {
  try {
    return await drainTaken(sql, p, (tx) => outboxTakePending(tx, { limit: p.limit }));
  } catch (err) {
    if (isTransientDbError(err)) throw err;
    p.log.warn(OUTBOX_ROUND_ISOLATING, { err });
    return drainOneByOne(sql, p, err);
  }
}

/** Rows failing one by one, none settled yet: the backend fails, not a row. */
const FAILED_WITHOUT_PROGRESS = 10;

/**
 * The failed round's rows, each in a transaction of its own: the rows that
 * publish are sent, a row refused for good is rejected, any other failure
 * leaves its row pending. An outage stops the round (thrown); so does a
 * round where rows fail and none gets anywhere (`roundError`: the backend
 * fails, not a row).
 */
async function drainOneByOne(sql: Sql, p: DrainParams, roundError: unknown): Promise<DrainRound> {
  const total: DrainRound = { published: 0, rejected: 0 };
  let failed = 0;
  for (const id of await outboxPendingIds(sql, { limit: p.limit })) {
    if (failed >= FAILED_WITHOUT_PROGRESS && total.published + total.rejected === 0) break;
    try {
      const r = await drainTaken(sql, p, (tx) => outboxTakePending(tx, { limit: 1, id }));
      total.published += r.published;
      total.rejected += r.rejected;
    } catch (err) {
      if (isTransientDbError(err)) throw err;
      if (!permanent(err)) {
        p.log.error(OUTBOX_ROW_FAILED, { outbox_id: id, err });
        failed += 1;
        continue;
      }
      const reason = `the queue refused it: ${describeError(err)}`.slice(0, 2000);
      // Another drainer may have settled the row meanwhile: then it is not ours to reject.
      if ((await outboxMarkRejected(sql, { rows: [{ id, error: reason }] })) > 0) {
        p.log.error(OUTBOX_ROW_REJECTED, { outbox_id: id, reason });
        total.rejected += 1;
      }
    }
  }
  if (failed > 0 && total.published + total.rejected === 0) throw roundError;
  return total;
}
