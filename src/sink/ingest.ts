import type { Background } from "../background";
import type { BufferMessage } from "../contracts/queue";
import type { Sql } from "../db/connect";
import { isMissingMigration, isTransientDbError } from "../db/errors";
import { failpoint } from "../failpoints";
import type { Dependency, GiveUp } from "../give-up";
import type { Logger } from "../log";
import type { ObjectStore } from "../objectstore";
import type { Message, QueueConsumer } from "../queue/seam";
import { databaseFailed, type Failure, unexpected } from "./failure";
import { fetchBatch } from "./fetch";
import { SINK_LOG } from "./logs";
import type { SinkMetrics } from "./metrics";
import type { Slots } from "./slots";
import { type BatchCounts, sinkBatchesRecordAgain } from "./sql";
import type { BatchWriter } from "./writer";

/**
 * One buffer message, start to finish: fetch and validate the whole batch,
 * write it in one DATA transaction, then ack on the queue. Poison is
 * dead-lettered at once; anything else that fails is left to come back after
 * the visibility timeout (and the queue dead-letters it after MAX_RECEIVES).
 * Either way no row of the batch is written.
 */

export interface SinkDeps {
  /** `buffer_queue`, the sink's only way to the STATE database. */
  queue: QueueConsumer<"buffer_queue">;
  data: Sql;
  store: ObjectStore;
  maxBatchBytes: number;
  visibilityTimeoutMs: number;
  log: Logger;
  metrics: SinkMetrics;
  /**
   * Writes the batches, a few at once, small ones together (./writer.ts);
   * fetching and validating run outside it. Without it, the loop makes one.
   */
  writer?: BatchWriter;
  /** Caps the batch bytes in hand, from fetch to write (weight: the claimed size). */
  memory?: Slots;
  /**
   * Where a committed batch's ack goes, so its place in hand is free at once
   * (the loop waits for them before it returns); without it, acks are awaited.
   */
  acks?: Background;
  /** Told of every outage of the STATE (queue) and DATA databases; under `--until-idle` it ends the run. */
  outages?: SinkOutages;
}

export interface SinkOutages {
  giveUp: GiveUp;
  state: Dependency;
  data: Dependency;
}

/** The deps a message is handled with: the loop's, its writer made. */
export type Writing = SinkDeps & { writer: BatchWriter };

export type Outcome = "ingested" | "dead_lettered" | "retry";
type BufferDelivery = Message<"buffer_queue">;

/** A write that failed because the DATA database is away or unmigrated is an outage of it. */
function noteWrite(deps: SinkDeps, err?: unknown): void {
  const o = deps.outages;
  if (o === undefined) return;
  if (err === undefined) o.giveUp.up(o.data);
  else if (isTransientDbError(err) || isMissingMigration(err)) o.giveUp.down(o.data, err);
}

/** Keeps a slow batch hidden from other sinks while it is worked on. */
function keepHidden(deps: SinkDeps, m: BufferDelivery): () => void {
  const every = Math.max(50, Math.floor(deps.visibilityTimeoutMs / 2));
  const timer = setInterval(() => {
    deps.queue
      .extendVisibility(m, { visibilityTimeoutMs: deps.visibilityTimeoutMs })
      .catch((err: unknown) =>
        deps.log.warn("could not extend visibility", { message_id: m.id, err }),
      );
  }, every);
  return () => clearInterval(timer);
}

async function settleFailure(deps: SinkDeps, m: BufferDelivery, f: Failure): Promise<Outcome> {
  const log = deps.log.child({ message_id: m.id, task_id: m.payload.task_id });
  try {
    if (f.kind === "poison") {
      await deps.queue.deadLetter(m, f.reason);
      deps.metrics.deadLetters++;
      log.warn(SINK_LOG.deadLettered, { attempt: m.payload.attempt, reason: f.reason });
      return "dead_lettered";
    }
    await deps.queue.recordError(m, f.reason);
  } catch (err) {
    log.error("could not record the failure; the message comes back anyway", {
      reason: f.reason,
      err,
    });
  }
  deps.metrics.retries++;
  log.warn(SINK_LOG.retried, {
    attempt: m.payload.attempt,
    receive_count: m.receiveCount,
    reason: f.reason,
  });
  return "retry";
}

/**
 * A batch of at least this many bytes (about 256 lines) is first looked up
 * among the recorded ones (sinkBatchesRecordAgain): one more statement for a
 * new batch, worth it when a redelivered one then skips its fetch,
 * validation and key look-ups. A smaller batch costs more in the statement.
 */
const LOOK_UP_RECORD_BYTES = 64 * 1024;

/** The batch's counts once committed, or why not; a batch committed before is only recorded again. */
async function writeBatch(deps: Writing, p: BufferMessage): Promise<BatchCounts | Failure> {
  const batch = {
    taskId: p.task_id,
    orgId: p.org_id,
    attempt: p.attempt,
    batchUri: p.batch_uri,
  };
  try {
    if (p.batch_size_bytes >= LOOK_UP_RECORD_BYTES) {
      const again = await sinkBatchesRecordAgain(deps.data, batch);
      noteWrite(deps);
      if (again !== undefined) return again;
    }
  } catch (err) {
    noteWrite(deps, err);
    return databaseFailed(err);
  }
  const fetched = await fetchBatch(deps.store, p, deps.maxBatchBytes);
  if (fetched.kind !== "ok") return fetched;
  try {
    const counts = await deps.writer.write({ ...batch, rows: fetched.rows }, p.batch_size_bytes);
    noteWrite(deps);
    return counts;
  } catch (err) {
    noteWrite(deps, err);
    return databaseFailed(err);
  }
}

async function ingestValid(deps: Writing, m: BufferDelivery, started: number): Promise<Outcome> {
  const p = m.payload;
  const counts = await writeBatch(deps, p);
  if ("kind" in counts) return settleFailure(deps, m, counts);
  failpoint("sink.after_commit");
  const fields = {
    message_id: m.id,
    task_id: p.task_id,
    attempt: p.attempt,
    receive_count: m.receiveCount,
    rows_inserted: counts.rowsInserted,
    rows_skipped: counts.rowsSkipped,
  };
  deps.metrics.batches++;
  deps.metrics.rowsInserted += counts.rowsInserted;
  deps.metrics.rowsSkipped += counts.rowsSkipped;
  if (deps.acks === undefined) await ackCommitted(deps, m, fields);
  else deps.acks.run(() => ackCommitted(deps, m, fields), SINK_LOG.notAcked, fields);
  deps.log.info(SINK_LOG.ingested, { ...fields, ms: Math.round(performance.now() - started) });
  return "ingested";
}

/** Acks a committed batch's message; should the ack be lost, a redelivery finds every key present and adds nothing. */
async function ackCommitted(deps: SinkDeps, m: BufferDelivery, fields: Record<string, unknown>) {
  try {
    const acked = await deps.queue.ack(m);
    if (!acked) deps.log.warn("batch committed but its message was already gone", fields);
  } catch (err) {
    deps.log.warn(SINK_LOG.notAcked, { ...fields, err });
  }
}

export async function ingestMessage(deps: Writing, m: BufferDelivery): Promise<Outcome> {
  const started = performance.now();
  deps.log.debug(SINK_LOG.received, {
    message_id: m.id,
    task_id: m.payload.task_id,
    attempt: m.payload.attempt,
    receive_count: m.receiveCount,
  });
  const stopKeeping = keepHidden(deps, m);
  try {
    const work = () => ingestValid(deps, m, started);
    const weight = m.payload.batch_size_bytes;
    return await (deps.memory === undefined ? work() : deps.memory.with(work, weight));
  } catch (err) {
    return settleFailure(deps, m, unexpected(err));
  } finally {
    stopKeeping();
  }
}
