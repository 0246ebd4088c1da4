import type { Sql } from "../db/connect";
import { sqlState } from "../db/errors";
import type { Logger } from "../log";
import { SINK_LOG } from "./logs";
import { AlertList } from "./rows";
import type { Slots } from "./slots";
import {
  alertEventsInsertBatch,
  alertEventsInsertGroup,
  type BatchCounts,
  type BatchInsertParams,
} from "./sql";

/**
 * The sink's writes, at most `slots` at once. Small batches ready at the same
 * time — the ones of one receive, or those that waited for a free place —
 * go in one statement (alertEventsInsertGroup): one round trip and one
 * commit for the group instead of one each, the way the queue coalesces its
 * acks. A larger batch goes alone (alertEventsInsertBatch). Should a group's
 * statement fail, each of its batches is written alone, so that one batch's
 * failure is its own, as when batches never shared a statement.
 */

/** A batch of fewer rows (and at most ONE_STATEMENT_BYTES, an AlertList) may share a statement. */
const GROUP_BATCH_ROWS = 256;
/** A group holds at most this many batches, and rows... */
const GROUP_BATCHES = 32;
const GROUP_ROWS = 2_000;
/** ...and about this many bytes of batches. */
const GROUP_BYTES = 1024 * 1024;

interface Waiting {
  p: BatchInsertParams;
  bytes: number;
  resolve(counts: BatchCounts): void;
  reject(err: unknown): void;
}

export class BatchWriter {
  private readonly waiting: Waiting[] = [];
  private flushing = false;

  constructor(
    private readonly data: Sql,
    private readonly slots: Slots,
    /** Told when a group's statement fails and its batches go one by one. */
    private readonly log?: Logger,
  ) {}

  /** Writes one validated batch (`bytes`: its size), alone or with others; its counts. */
  write(p: BatchInsertParams, bytes: number): Promise<BatchCounts> {
    if (!(p.rows instanceof AlertList) || p.rows.count >= GROUP_BATCH_ROWS) {
      return this.slots.with(() => alertEventsInsertBatch(this.data, p));
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ p, bytes, resolve, reject });
      this.schedule();
    });
  }

  /** Once the batches ready in this turn of the event loop have arrived, groups them. */
  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  /** Takes a place, then the waiting batches that fit one group; more wait for the next place. */
  private async flush(): Promise<void> {
    await this.slots.acquire();
    this.flushing = false;
    const group = this.take();
    if (this.waiting.length > 0) this.schedule();
    try {
      await this.writeGroup(group);
    } finally {
      this.slots.release();
    }
  }

  private take(): Waiting[] {
    const group: Waiting[] = [];
    let rows = 0;
    let bytes = 0;
    for (let next = this.waiting[0]; next !== undefined; next = this.waiting[0]) {
      const full =
        group.length >= GROUP_BATCHES ||
        rows + next.p.rows.count > GROUP_ROWS ||
        bytes + next.bytes > GROUP_BYTES;
      if (group.length > 0 && full) break;
      group.push(next);
      this.waiting.shift();
      rows += next.p.rows.count;
      bytes += next.bytes;
    }
    return group;
  }

  private async writeGroup(group: Waiting[]): Promise<void> {
    if (group.length > 1) {
      try {
        const counts = await alertEventsInsertGroup(
          this.data,
          group.map((w) => w.p),
        );
        group.forEach((w, i) => {
          const c = counts[i];
          if (c === undefined) w.reject(new Error(`no counts for ${w.p.batchUri}`));
          else w.resolve(c);
        });
        return;
      } catch (err) {
        // Each alone: its failure, if any, is its own, and told with its batch. A
        // database error is told by its code alone here: its message may quote a row.
        const code = sqlState(err);
        this.log?.warn(SINK_LOG.groupFailed, {
          batches: group.length,
          rows: group.reduce((n, w) => n + w.p.rows.count, 0),
          ...(code === undefined ? { err } : { code }),
        });
      }
    }
    for (const w of group) {
      await alertEventsInsertBatch(this.data, w.p).then(w.resolve, w.reject);
    }
  }
}
