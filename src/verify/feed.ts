import type { TaskPayload } from "../contracts/task";
import type { Sql } from "../db/connect";
import { createLogger } from "../log";
import type { QueueBackend } from "../queue/seam";
import { auditOrgProgress } from "../reads/audit";
import { sleep } from "../sleep";
import { createTasks } from "../tasks/create";
import { liveMessageCount } from "./queues";

/**
 * The tasks of a verify run: all at once, or (a soak) at a steady rate for a
 * given time. PostgreSQL may be down for a moment (a restart in the
 * schedule): a creation that fails is tried again, and the pipeline counts
 * as quiet only once it stayed quiet for a while.
 */

const log = createLogger("verify");

export class TaskFeed {
  readonly ids: string[] = [];

  constructor(
    private readonly state: Sql,
    private readonly orgId: string,
    private readonly payload: TaskPayload,
  ) {}

  /** Creates `count` tasks, retrying while the database is unreachable, until `deadline`. */
  async create(count: number, deadline = Date.now() + 60_000): Promise<void> {
    for (;;) {
      try {
        this.ids.push(
          ...(await createTasks(this.state, { orgId: this.orgId, payload: this.payload, count })),
        );
        return;
      } catch (err) {
        log.warn("creating tasks failed", { err, count });
        if (Date.now() > deadline) throw err;
        await sleep(250);
      }
    }
  }

  /**
   * `rate` tasks a second until `until` (epoch ms) or `limit` tasks, in
   * quarter-second steps; a step that fails is made up by the next.
   */
  async steady(rate: number, until: number, limit = Number.POSITIVE_INFINITY): Promise<void> {
    const started = Date.now();
    let created = 0;
    while (Date.now() < until && created < limit) {
      const due = Math.min(limit, Math.floor(((Date.now() - started) / 1000) * rate)) - created;
      if (due > 0) {
        try {
          await this.create(due, Date.now());
          created += due;
        } catch {
          // logged by create; the next step makes it up
        }
      }
      await sleep(250);
    }
    if (created < limit && Number.isFinite(limit)) await this.create(limit - created);
  }
}

/**
 * Waits until every task of the org finished, no outbox row was pending and
 * the queues (read through the seam, on either backend) held nothing for
 * `quietMs`; false at the deadline. A failed look (the database or the
 * broker restarting) counts as not quiet.
 */
export async function waitQuiet(
  state: Sql,
  queue: QueueBackend,
  o: { orgId: string; deadline: number; quietMs?: number },
): Promise<boolean> {
  const { orgId, deadline, quietMs = 500 } = o;
  let quietSince: number | undefined;
  for (;;) {
    const p = await auditOrgProgress(state, { orgId }).catch(() => undefined);
    const backlog = await liveMessageCount(queue.admin()).catch(() => 1);
    const done = p !== undefined && p.total > 0 && p.finished === p.total;
    const quiet = done && p.pending === 0 && backlog === 0;
    quietSince = quiet ? (quietSince ?? Date.now()) : undefined;
    if (quietSince !== undefined && Date.now() - quietSince > quietMs) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}
