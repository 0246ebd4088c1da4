import type { NatsConnection, Subscription } from "@nats-io/transport-node";

/**
 * Long-poll support for one queue: while anyone waits, a plain subscription
 * on the queue's ready subject (every publish, move from delayed and redrive
 * lands there) wakes every waiter. The SUB goes out on the connection before
 * the caller's next pull, and the server reads one connection in order, so
 * a publish between `wait` and a `receive` that came back empty is not missed.
 */
export class ReadySignal {
  private sub: Subscription | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
  ) {}

  wait(timeoutMs: number, abort?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (abort?.aborted || this.nc.isClosed() || this.nc.isDraining()) return resolve();
      const done = () => {
        clearTimeout(timer);
        abort?.removeEventListener("abort", done);
        this.waiters.delete(done);
        if (this.waiters.size === 0) this.unsubscribe();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      abort?.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
      this.sub ??= this.nc.subscribe(this.subject, { callback: () => this.wakeAll() });
    });
  }

  private wakeAll(): void {
    for (const done of [...this.waiters]) done();
  }

  private unsubscribe(): void {
    if (this.sub !== undefined && !this.nc.isClosed()) this.sub.unsubscribe();
    this.sub = undefined;
  }

  close(): void {
    this.wakeAll();
    this.unsubscribe();
  }
}
