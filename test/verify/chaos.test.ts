import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  ChaosEvent,
  chaosSchedule,
  FAULT_KINDS,
  type FaultKind,
  parseFaultKinds,
  type ScheduleParams,
} from "../../src/verify/chaos";

/** The seeded schedule: replayable, every chosen kind in it, lengths in their ranges. */

const base: ScheduleParams = {
  seed: 1,
  kinds: FAULT_KINDS,
  roles: ["dispatcher-1", "dispatcher-2", "worker-1", "worker-2", "sink"],
  links: ["dispatcher-1→postgres", "worker-1→dispatcher-2", "worker-1→postgres", "sink→postgres"],
  tasks: 50,
  windowMs: 8_000,
  events: 12,
  leaseMs: 2_000,
  brokerNodes: 3,
};

const kindOf = (e: ChaosEvent): FaultKind =>
  e.kind === "duplicate_wakeups" || e.kind === "duplicate_buffer"
    ? "duplicate"
    : e.kind === "postgres_restart"
      ? "postgres-restart"
      : e.kind === "broker_kill"
        ? "broker-kill"
        : e.kind;

describe("chaos schedule", () => {
  test("the same seed gives the same schedule; another seed another", () => {
    expect(chaosSchedule({ ...base, seed: 7 })).toEqual(chaosSchedule({ ...base, seed: 7 }));
    expect(chaosSchedule({ ...base, seed: 7 })).not.toEqual(chaosSchedule({ ...base, seed: 8 }));
  });

  test("seeds 1 to 5 each hold every kind, in the window, with lengths in range, and valid as a --schedule", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const events = chaosSchedule({ ...base, seed });
      expect(new Set(events.map(kindOf))).toEqual(new Set(FAULT_KINDS));
      expect(events.map((e) => e.atMs)).toEqual(
        [...events.map((e) => e.atMs)].sort((a, b) => a - b),
      );
      for (const e of events) {
        expect(e.atMs).toBeGreaterThanOrEqual(0);
        expect(e.atMs).toBeLessThanOrEqual(base.windowMs);
        if (e.kind === "pause") {
          expect(e.ms).toBeGreaterThanOrEqual(base.leaseMs / 2);
          expect(e.ms).toBeLessThanOrEqual(4 * base.leaseMs);
          expect(base.roles).toContain(e.role);
        }
        if (e.kind === "network") expect(["all", ...base.links]).toContain(e.link);
        if (e.kind === "kill") expect(base.roles).toContain(e.role);
      }
      expect(v.parse(v.array(ChaosEvent), JSON.parse(JSON.stringify(events)))).toEqual(events);
    }
  });

  test("only the chosen kinds; network needs links", () => {
    const only = chaosSchedule({ ...base, kinds: ["pause", "network"], events: 30 });
    expect(new Set(only.map(kindOf))).toEqual(new Set(["pause", "network"]));
    const noLinks = chaosSchedule({ ...base, kinds: ["network", "kill"], links: [], events: 10 });
    expect(new Set(noLinks.map(kindOf))).toEqual(new Set(["kill"]));
    expect(chaosSchedule({ ...base, kinds: [] })).toEqual([]);
    // broker-kill needs a cluster of verify's own, and picks one of its nodes.
    const noBroker = chaosSchedule({ ...base, kinds: ["broker-kill", "kill"], brokerNodes: 0 });
    expect(new Set(noBroker.map(kindOf))).toEqual(new Set(["kill"]));
    const targets = chaosSchedule({ ...base, kinds: ["broker-kill"], events: 40 }).flatMap((e) =>
      e.kind === "broker_kill" ? [e.target] : [],
    );
    expect(new Set(targets)).toEqual(new Set(["leader", 0, 1, 2]));
  });

  test("adding broker-kill to the kinds leaves every schedule without a cluster as it was", () => {
    const { brokerNodes: _, ...without } = base;
    const kinds = FAULT_KINDS.filter((k) => k !== "broker-kill");
    for (let seed = 1; seed <= 5; seed++)
      expect(chaosSchedule({ ...without, seed })).toEqual(
        chaosSchedule({ ...without, kinds, seed }),
      );
  });

  test("pauses run from under a lease to several leases", () => {
    const pauses = chaosSchedule({ ...base, kinds: ["pause"], events: 200 }).flatMap((e) =>
      e.kind === "pause" ? [e.ms] : [],
    );
    expect(Math.min(...pauses)).toBeLessThan(base.leaseMs);
    expect(Math.max(...pauses)).toBeGreaterThan(3 * base.leaseMs);
  });

  test("--faults parses a list of kinds and names an unknown one", () => {
    expect(parseFaultKinds("kill, pause,kill")).toEqual(["kill", "pause"]);
    expect(() => parseFaultKinds("kill,flood")).toThrow('unknown fault kind "flood"');
  });
});
