import type { Logger } from "./log";

/**
 * Calls that need no one to wait for them, but must end before their role
 * does: an ack once the work it acknowledges is committed. A lost ack only
 * means a redelivered duplicate, which every consumer handles (a finished
 * task's claim is refused; a batch's rows are already there), so a slot is
 * let go once the work is committed, and the ack's linger and commit go on
 * meanwhile. A failure is logged; `settled()` waits for every call started,
 * including any started while it waits, before the role closes its queue.
 */
/** What a role that acks in the background lets an ack wait for others to share its DELETE (pgqueue). */
export const BACKGROUND_ACK_LINGER_MS = 10;

export class Background {
  readonly #running = new Set<Promise<void>>();

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.#running.size;
  }

  /** Runs `call` in the background; a failure is logged as `warning` with `fields`. */
  run(call: () => Promise<unknown>, warning: string, fields: Record<string, unknown> = {}): void {
    const p = Promise.resolve()
      .then(call)
      .then(
        () => {},
        (err: unknown) => this.log.warn(warning, { ...fields, err }),
      )
      .finally(() => this.#running.delete(p));
    this.#running.add(p);
  }

  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }
}
