/**
 * A seeded fault schedule: the same seed gives the same events at the same
 * offsets with the same targets, so a failing run can be replayed.
 */

export type ChaosEvent =
  | { atMs: number; kind: "kill"; role: string }
  | { atMs: number; kind: "duplicate_wakeups"; taskIndexes: number[] }
  | { atMs: number; kind: "duplicate_buffer"; pick: number };

/** mulberry32: small, fast, good enough to spread faults. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function chaosSchedule(p: {
  seed: number;
  roles: readonly string[];
  tasks: number;
  windowMs: number;
  events: number;
}): ChaosEvent[] {
  const next = prng(p.seed);
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(next() * items.length)];
    if (item === undefined) throw new Error("chaos: nothing to pick from");
    return item;
  };
  const events: ChaosEvent[] = [];
  for (let i = 0; i < p.events; i++) {
    const atMs = Math.round(next() * p.windowMs);
    const roll = next();
    if (roll < 0.5) events.push({ atMs, kind: "kill", role: pick(p.roles) });
    else if (roll < 0.8) {
      const n = 1 + Math.floor(next() * Math.min(10, p.tasks));
      const taskIndexes = Array.from({ length: n }, () => Math.floor(next() * p.tasks));
      events.push({ atMs, kind: "duplicate_wakeups", taskIndexes });
    } else events.push({ atMs, kind: "duplicate_buffer", pick: Math.floor(next() * 1_000_000) });
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

export function describeEvent(e: ChaosEvent): string {
  switch (e.kind) {
    case "kill":
      return `+${e.atMs}ms kill -9 ${e.role}`;
    case "duplicate_wakeups":
      return `+${e.atMs}ms duplicate wakeups for ${e.taskIndexes.length} task(s)`;
    case "duplicate_buffer":
      return `+${e.atMs}ms duplicate buffer message`;
  }
}
