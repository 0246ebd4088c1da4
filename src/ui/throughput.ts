import type { BucketRange, Buckets } from "../reads/throughput";

/**
 * A per-bucket series over a sliding window that reads each old bucket
 * once. Buckets older than `sealAfterSeconds` are sealed: what finished then
 * has committed, so their totals no longer change and are kept. Each call
 * reads the open buckets (the last `sealAfterSeconds`) and at most
 * `chunkSeconds` of sealed buckets not read yet, newest first — so a call
 * costs a bounded range however busy the platform, and a fresh dashboard
 * fills its chart within a few refreshes (unknown buckets are null).
 */

export interface SeriesOptions {
  bucketSeconds: number;
  windowSeconds: number;
  sealAfterSeconds: number;
  chunkSeconds: number;
}

export class SealedSeries {
  private readonly sealed = new Map<number, number>();

  constructor(
    private readonly read: (r: BucketRange) => Promise<Buckets>,
    private readonly o: SeriesOptions,
  ) {}

  /** Totals per bucket, oldest first, the last bucket holding `now` (epoch seconds); null: not read yet. */
  async series(now: number): Promise<Array<number | null>> {
    const b = this.o.bucketSeconds;
    const count = Math.ceil(this.o.windowSeconds / b);
    const last = Math.floor(now / b) * b;
    const first = last - (count - 1) * b;
    const seal = Math.min(last, Math.floor((now - this.o.sealAfterSeconds) / b) * b);
    for (const bucket of this.sealed.keys()) if (bucket < first) this.sealed.delete(bucket);

    const open = await this.read({ bucketSeconds: b, from: seal, to: last + b });
    const backfill = this.missing(first, seal);
    if (backfill !== null) {
      const got = new Map(
        (await this.read({ bucketSeconds: b, ...backfill })).map((x) => [x.bucket, x.n]),
      );
      for (let t = backfill.from; t < backfill.to; t += b) this.sealed.set(t, got.get(t) ?? 0);
    }
    const recent = new Map(open.map((x) => [x.bucket, x.n]));
    return Array.from({ length: count }, (_, i) => {
      const t = first + i * b;
      return t >= seal ? (recent.get(t) ?? 0) : (this.sealed.get(t) ?? null);
    });
  }

  /** The newest run of sealed buckets not read yet, at most `chunkSeconds` long. */
  private missing(first: number, seal: number): { from: number; to: number } | null {
    const b = this.o.bucketSeconds;
    let to = seal;
    while (to > first && this.sealed.has(to - b)) to -= b;
    if (to <= first) return null;
    let from = to - b;
    while (from > first && to - from < this.o.chunkSeconds && !this.sealed.has(from - b)) from -= b;
    return { from, to };
  }
}
