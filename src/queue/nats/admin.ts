import type { StoredMsg } from "@nats-io/jetstream";
import { QUEUE_NAMES, type QueueName } from "../../contracts/queue";
import type { DeadLetter, QueueAdmin, QueueDepth } from "../seam";
import { parseJson } from "./consumer";
import { readEnvelope } from "./envelope";
import type { Names, QueueNames } from "./names";
import type { Store } from "./store";

/**
 * Depths, dead letters and redrive on NATS. A dead letter lives in its
 * queue's `_dlq` stream under `…dlq.<id>` (the message's own id); redrive
 * publishes it back to ready — same id, creation time and last error, a
 * fresh receive count — then deletes the dead copy (`redrive:<seq>` makes
 * a repeat after a crash in between a duplicate).
 */

const DEFAULT_LIMIT = 1000;

interface Stored {
  letter: DeadLetter;
  seq: number;
  data: Uint8Array;
}

function storedLetter(queue: QueueName, m: StoredMsg): Stored {
  const env = readEnvelope(m.header);
  return {
    seq: m.seq,
    data: m.data,
    letter: {
      id: env.id ?? m.subject.slice(m.subject.lastIndexOf(".") + 1),
      queue,
      payload: parseJson(m.data),
      receiveCount: env.receiveCount ?? 0,
      lastError: env.lastError ?? null,
      createdAt: new Date(env.createdAt ?? m.time.getTime()),
    },
  };
}

export class NatsAdmin implements QueueAdmin {
  constructor(
    private readonly store: Store,
    private readonly names: Names,
  ) {}

  async depths(): Promise<QueueDepth[]> {
    try {
      return await Promise.all(
        QUEUE_NAMES.map(async (queue) => {
          const q = this.names.of(queue);
          const [live, dead] = await Promise.all([
            this.store.queueCounts(q),
            this.store.deadCount(q),
          ]);
          return { queue, ...live, dead };
        }),
      );
    } catch (cause) {
      throw new Error(`reading queue depths (namespace ${this.names.namespace})`, { cause });
    }
  }

  /** Oldest first, in stream order. */
  private async *letters(q: QueueNames): AsyncGenerator<Stored> {
    let seq = 1;
    for (;;) {
      const m = await this.store.messageGet(q.dlqStream, { seq, next_by_subj: q.dlqWildcard });
      if (m === null) return;
      yield storedLetter(q.queue, m);
      seq = m.seq + 1;
    }
  }

  async listDeadLetters(p: {
    queues?: readonly QueueName[];
    limit?: number;
  }): Promise<DeadLetter[]> {
    const limit = p.limit ?? DEFAULT_LIMIT;
    const all: DeadLetter[] = [];
    for (const queue of p.queues ?? QUEUE_NAMES) {
      let n = 0;
      for await (const s of this.letters(this.names.of(queue))) {
        if (n++ >= limit) break;
        all.push(s.letter);
      }
    }
    all.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    return all.slice(0, limit);
  }

  async redrive(p: { queue: QueueName; id?: string }): Promise<number> {
    const q = this.names.of(p.queue);
    if (p.id !== undefined) {
      const m = await this.store.messageGet(q.dlqStream, { last_by_subj: q.dlq(p.id) });
      return m === null ? 0 : Number(await this.redriveOne(q, storedLetter(q.queue, m)));
    }
    let moved = 0;
    for await (const s of this.letters(q)) if (await this.redriveOne(q, s)) moved++;
    return moved;
  }

  private async redriveOne(q: QueueNames, s: Stored): Promise<boolean> {
    const { letter } = s;
    await this.store.messagePublish(q.ready, s.data, {
      envelope: {
        id: letter.id,
        createdAt: letter.createdAt.getTime(),
        lastError: letter.lastError,
      },
      dedupeId: `redrive:${s.seq}`,
    });
    return this.store.messageDelete(q.dlqStream, s.seq);
  }
}
