/**
 * Slows down repeated login failures: after `free` failures from one client,
 * each further attempt must wait `baseMs`, doubling per failure up to
 * `maxMs`; an attempt made sooner is refused without even checking the
 * token. One success clears the client.
 */

export interface ThrottleOptions {
  free: number;
  baseMs: number;
  maxMs: number;
  /** Clients remembered at most; the least recent go first. */
  maxKeys: number;
  now?: () => number;
}

interface Entry {
  failures: number;
  until: number;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly o: ThrottleOptions) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** How long the client must still wait before its next attempt (0: it may try now). */
  waitMs(key: string): number {
    const e = this.entries.get(key);
    return e === undefined ? 0 : Math.max(0, e.until - this.now());
  }

  failed(key: string): void {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const over = failures - this.o.free;
    const delay = over <= 0 ? 0 : Math.min(this.o.maxMs, this.o.baseMs * 2 ** (over - 1));
    this.entries.delete(key);
    this.entries.set(key, { failures, until: this.now() + delay });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.o.maxKeys) break;
      this.entries.delete(oldest);
    }
  }

  succeeded(key: string): void {
    this.entries.delete(key);
  }
}
