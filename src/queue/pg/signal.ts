import type { Sql } from "../../db/connect";
import { createLogger } from "../../log";
import { NOTIFY_CHANNEL } from "./sql";

/**
 * Long-poll support: publishers NOTIFY at commit; a receiver that found its
 * queue empty waits here for a notification or a short timeout (for
 * messages that become visible again when their visibility timeout passes).
 */
export interface QueueSignal {
  /** Resolves on a publish to `queue`, after `timeoutMs`, or when `abort` fires. */
  wait(queue: string, timeoutMs: number, abort?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

const log = createLogger("queue");

export async function listenQueues(sql: Sql): Promise<QueueSignal> {
  const waiters = new Map<string, Set<() => void>>();
  const wake = (queue: string) => {
    const set = waiters.get(queue);
    if (set === undefined) return;
    waiters.delete(queue);
    for (const resolve of set) resolve();
  };
  const subscription = await sql.listen(NOTIFY_CHANNEL, wake, () =>
    log.debug("listening for queue notifications"),
  );
  return {
    wait(queue, timeoutMs, abort) {
      return new Promise<void>((resolve) => {
        if (abort?.aborted) return resolve();
        let set = waiters.get(queue);
        if (set === undefined) {
          set = new Set();
          waiters.set(queue, set);
        }
        const done = () => {
          clearTimeout(timer);
          abort?.removeEventListener("abort", done);
          waiters.get(queue)?.delete(done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        abort?.addEventListener("abort", done, { once: true });
        set.add(done);
      });
    },
    async close() {
      for (const queue of [...waiters.keys()]) wake(queue);
      await subscription.unlisten();
    },
  };
}
