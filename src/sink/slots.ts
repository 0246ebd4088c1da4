/**
 * A weighted semaphore: holders take `weight` of `size` (1 by default), at
 * most `size` in all at once, waiters served in order. A holder heavier
 * than the whole size takes all of it, so it runs alone rather than never.
 * The sink caps concurrent writes with one (weight 1: one per write, so CPU
 * work overlaps the database's) and the batch bytes in hand with another.
 */
export class Slots {
  private free: number;
  private readonly waiting: Array<{ weight: number; wake: () => void }> = [];

  constructor(private readonly size: number) {
    this.free = size;
  }

  async acquire(weight = 1): Promise<void> {
    const w = Math.min(weight, this.size);
    if (this.waiting.length === 0 && this.free >= w) {
      this.free -= w;
      return;
    }
    await new Promise<void>((wake) => this.waiting.push({ weight: w, wake }));
  }

  release(weight = 1): void {
    this.free += Math.min(weight, this.size);
    for (let next = this.waiting[0]; next !== undefined && this.free >= next.weight; ) {
      this.free -= next.weight;
      this.waiting.shift();
      next.wake();
      next = this.waiting[0];
    }
  }

  async with<T>(work: () => Promise<T>, weight = 1): Promise<T> {
    await this.acquire(weight);
    try {
      return await work();
    } finally {
      this.release(weight);
    }
  }
}
