import * as v from "valibot";

/**
 * A seeded fault schedule: the same seed (and the same roles, links and
 * kinds) gives the same events at the same offsets with the same targets and
 * lengths, so a failing run can be replayed.
 */

export const FAULT_KINDS = [
  "kill",
  "duplicate",
  "pause",
  "network",
  "postgres-restart",
  "broker-kill",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const at = { atMs: v.pipe(v.number(), v.integer(), v.minValue(0)) };
const ms = v.pipe(v.number(), v.integer(), v.minValue(0));
const role = v.pipe(v.string(), v.minLength(1));

const network = { ...at, kind: v.literal("network"), link: role };
const NetworkEvent = v.variant("fault", [
  v.strictObject({ ...network, fault: v.literal("latency"), latencyMs: ms, ms }),
  v.strictObject({ ...network, fault: v.literal("blackhole"), ms }),
  v.strictObject({ ...network, fault: v.literal("reset"), ms }),
]);
/** A network fault: `latencyMs` on every chunk, a black hole, or resets, each for `ms`. */
export type NetworkFault = WithoutWhere<v.InferOutput<typeof NetworkEvent>>;
type WithoutWhere<E> = E extends unknown ? Omit<E, "atMs" | "kind" | "link"> : never;

export const RestartMode = v.picklist(["fast", "immediate"]);
export type RestartMode = v.InferOutput<typeof RestartMode>;

/** One fault event; a JSON array of them is a schedule `verify --schedule FILE` replays. */
export const ChaosEvent = v.variant("kind", [
  v.strictObject({ ...at, kind: v.literal("kill"), role }),
  v.strictObject({ ...at, kind: v.literal("duplicate_wakeups"), taskIndexes: v.array(ms) }),
  v.strictObject({ ...at, kind: v.literal("duplicate_buffer"), pick: ms }),
  v.strictObject({ ...at, kind: v.literal("pause"), role, ms }),
  NetworkEvent,
  v.strictObject({ ...at, kind: v.literal("postgres_restart"), mode: RestartMode, downMs: ms }),
  v.strictObject({
    ...at,
    kind: v.literal("broker_kill"),
    /** A node by index, or whichever leads the task_wakeup stream when the kill comes. */
    target: v.union([v.literal("leader"), ms]),
    downMs: ms,
  }),
]);
export type ChaosEvent = v.InferOutput<typeof ChaosEvent>;

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

export interface ScheduleParams {
  seed: number;
  kinds: readonly FaultKind[];
  roles: readonly string[];
  /** Network links (`worker-1→postgres`); a network fault hits one of them or "all". */
  links: readonly string[];
  tasks: number;
  windowMs: number;
  events: number;
  /** Pauses and black holes run from under a lease to several leases long. */
  leaseMs: number;
  /** Nodes of a broker cluster of verify's own (`--nats-cluster`) that broker-kill may pick. */
  brokerNodes?: number;
}

/** How often each kind is drawn, relative to the others chosen. */
const WEIGHTS: Record<FaultKind, number> = {
  kill: 3,
  duplicate: 3,
  pause: 2,
  network: 3,
  "postgres-restart": 1,
  "broker-kill": 1,
};

type Draw = {
  next: () => number;
  pick: <T>(items: readonly T[]) => T;
  between: (lo: number, hi: number) => number;
};

function draw(seed: number): Draw {
  const next = prng(seed);
  return {
    next,
    pick<T>(items: readonly T[]): T {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error("chaos: nothing to pick from");
      return item;
    },
    between: (lo, hi) => Math.round(lo + next() * (hi - lo)),
  };
}

function eventOf(kind: FaultKind, atMs: number, d: Draw, p: ScheduleParams): ChaosEvent {
  const L = p.leaseMs;
  switch (kind) {
    case "kill":
      return { atMs, kind, role: d.pick(p.roles) };
    case "duplicate": {
      if (d.next() < 0.4) return { atMs, kind: "duplicate_buffer", pick: d.between(0, 1_000_000) };
      const n = 1 + Math.floor(d.next() * Math.min(10, p.tasks));
      const taskIndexes = Array.from({ length: n }, () => Math.floor(d.next() * p.tasks));
      return { atMs, kind: "duplicate_wakeups", taskIndexes };
    }
    case "pause":
      return { atMs, kind, role: d.pick(p.roles), ms: d.between(L / 2, 4 * L) };
    case "network": {
      const link = d.next() < 0.3 ? "all" : d.pick(p.links);
      const roll = d.next();
      if (roll < 0.35)
        return {
          atMs,
          kind,
          link,
          fault: "latency",
          latencyMs: d.between(20, 400),
          ms: d.between(L / 2, 3 * L),
        };
      if (roll < 0.7) return { atMs, kind, link, fault: "blackhole", ms: d.between(L / 4, 3 * L) };
      return { atMs, kind, link, fault: "reset", ms: d.between(0, L) };
    }
    case "postgres-restart":
      return {
        atMs,
        kind: "postgres_restart",
        mode: d.next() < 0.5 ? "fast" : "immediate",
        downMs: d.between(200, 1.5 * L),
      };
    case "broker-kill":
      return {
        atMs,
        kind: "broker_kill",
        target: d.next() < 0.5 ? "leader" : Math.floor(d.next() * (p.brokerNodes ?? 1)),
        downMs: d.between(L / 2, 3 * L),
      };
  }
}

/**
 * `events` events spread over `windowMs`. Each chosen kind gets at least one
 * event when there are enough; the rest are drawn by weight.
 */
export function chaosSchedule(p: ScheduleParams): ChaosEvent[] {
  const d = draw(p.seed);
  const kinds = FAULT_KINDS.filter(
    (k) =>
      p.kinds.includes(k) &&
      (k !== "network" || p.links.length > 0) &&
      (k !== "broker-kill" || (p.brokerNodes ?? 0) > 0),
  );
  if (kinds.length === 0) return [];
  const total = kinds.reduce((n, k) => n + WEIGHTS[k], 0);
  const weighted = (): FaultKind => {
    let roll = d.next() * total;
    for (const k of kinds) {
      roll -= WEIGHTS[k];
      if (roll < 0) return k;
    }
    return d.pick(kinds);
  };
  const events: ChaosEvent[] = [];
  for (let i = 0; i < p.events; i++) {
    const kind = i < kinds.length ? (kinds[i] ?? weighted()) : weighted();
    events.push(eventOf(kind, Math.round(d.next() * p.windowMs), d, p));
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

export function describeEvent(e: ChaosEvent): string {
  const at = `+${e.atMs}ms`;
  switch (e.kind) {
    case "kill":
      return `${at} kill -9 ${e.role}`;
    case "duplicate_wakeups":
      return `${at} duplicate wakeups for ${e.taskIndexes.length} task(s)`;
    case "duplicate_buffer":
      return `${at} duplicate buffer message`;
    case "pause":
      return `${at} pause ${e.role} for ${e.ms}ms (SIGSTOP, then SIGCONT)`;
    case "network": {
      const what =
        e.fault === "latency"
          ? `${e.latencyMs}ms latency`
          : e.fault === "blackhole"
            ? "black hole"
            : "reset (RST) and refuse";
      return `${at} network ${what} on ${e.link} for ${e.ms}ms`;
    }
    case "postgres_restart":
      return `${at} restart PostgreSQL (${e.mode} stop, down ${e.downMs}ms)`;
    case "broker_kill": {
      const which =
        e.target === "leader"
          ? "the broker node leading task_wakeup"
          : `broker node ${e.target + 1}`;
      return `${at} kill -9 ${which}, down ${e.downMs}ms`;
    }
  }
}

/** Parses `--faults kill,duplicate,…`; throws naming the unknown kind. */
export function parseFaultKinds(text: string): FaultKind[] {
  const kinds: FaultKind[] = [];
  for (const raw of text.split(",")) {
    const name = raw.trim();
    if (name === "") continue;
    const kind = FAULT_KINDS.find((k) => k === name);
    if (kind === undefined)
      throw new Error(
        `unknown fault kind ${JSON.stringify(name)} (kinds: ${FAULT_KINDS.join(", ")})`,
      );
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}
