import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { acceptorOf } from "../../src/contracts/accept";
import { AlertLine } from "../../src/contracts/alert";
import { CONTRACTS } from "../../src/contracts/registry";
import { EXAMPLES, VALIBOT_ONLY } from "./examples";

// The fast yes (src/contracts/accept.ts) must never pass what valibot refuses,
// and should pass what it accepts: held to valibot's verdict value by value.

const acceptAlertLine = acceptorOf(AlertLine);

/** A small seeded generator (mulberry32), so a failure names a case that comes back. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

const KEYS = [
  "dedupe_key",
  "org_id",
  "source",
  "severity",
  "title",
  "occurred_at",
  "attributes",
  "extra",
  "constructor",
  "__proto__",
];
/** Values at and across each rule's edge, and of every JSON type. */
const VALUES: unknown[] = [
  "",
  "a",
  "acme",
  "ac me",
  "-acme",
  "a.b_c-9",
  "a".repeat(64),
  "a".repeat(65),
  "x".repeat(256),
  "x".repeat(257),
  "x".repeat(1024),
  "x".repeat(1025),
  "info",
  "low",
  "HIGH",
  "critical",
  "2024-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2025-06-01 12:00:00+15:59",
  "2025-06-01T12:00:00-16:00",
  "2025-06-01T24:00:00Z",
  "2025-06-01T12:00:00",
  "2025-06-01t12:00:00.123456789z",
  "2025-06-01T12:00:00.1234567890Z",
  "9999-12-31T23:59:59.9999994Z",
  "9999-12-31T23:59:59.9999995Z",
  "9999-12-31T23:30:00-01:00",
  "0001-01-01T00:30:00+01:00",
  "0000-01-01T00:00:00Z",
  0,
  -0,
  1,
  0.1,
  2 ** 53,
  2 ** 53 + 2,
  Number.POSITIVE_INFINITY,
  null,
  true,
  [],
  [1, "a"],
  {},
  { ip: "10.0.0.1" },
  { n: [2 ** 53, -(2 ** 53)] },
  { n: { m: 2 ** 60 } },
  { bad: Number.NEGATIVE_INFINITY },
  nested(63),
  nested(64),
];

const base = {
  dedupe_key: "k-1",
  org_id: "acme",
  source: "edr",
  severity: "high",
  title: "suspicious login",
  occurred_at: "2025-06-01T11:59:59+02:00",
  attributes: { host: "h-1", n: 3 },
};

/** `base` with one to three fields set, dropped or added, as JSON.parse would build it. */
function mutated(next: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] ?? xs[0] ?? pick(xs);
  const line: Record<string, unknown> = { ...base };
  if (next() < 0.3) delete line.attributes;
  const changes = 1 + Math.floor(next() * 3);
  for (let i = 0; i < changes; i++) {
    const key = pick(KEYS);
    if (next() < 0.2) delete line[key];
    else line[key] = pick(VALUES);
  }
  // Through JSON, as a line reaches the sink: "__proto__" becomes an own key, -0 and Infinity change.
  return JSON.parse(JSON.stringify(line));
}

describe("acceptorOf", () => {
  test("the alert line contract has one (the sink's fast path)", () => {
    expect(acceptAlertLine).toBeDefined();
  });

  test("on every contract's examples it says yes exactly where valibot does", () => {
    let compared = 0;
    for (const c of CONTRACTS) {
      const accept = acceptorOf(c.schema);
      if (accept === undefined) continue;
      const examples = EXAMPLES[c.name] ?? { valid: [], invalid: [] };
      const values = [
        ...examples.valid,
        ...examples.invalid.map((e) => e.value),
        ...VALIBOT_ONLY.filter((e) => e.contract === c.name).map((e) => e.value),
      ];
      for (const value of values) {
        expect(accept(value), `${c.name}: ${JSON.stringify(value)}`).toBe(v.is(c.schema, value));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(15);
  });

  test("on 20,000 mutated alert lines it says yes exactly where valibot does", () => {
    const accept = acceptAlertLine;
    if (accept === undefined) throw new Error("no acceptor for AlertLine");
    const next = random(15);
    const verdicts = { yes: 0, no: 0 };
    for (let i = 0; i < 20_000; i++) {
      const line = mutated(next);
      const want = v.is(AlertLine, line);
      expect(accept(line), `case ${i}: ${JSON.stringify(line)}`).toBe(want);
      verdicts[want ? "yes" : "no"]++;
    }
    // Both verdicts, many times each: the comparison is not all one way.
    expect(verdicts.yes).toBeGreaterThan(2_000);
    expect(verdicts.no).toBeGreaterThan(2_000);
  });

  test("keys every object inherits, given as a line's own keys, get valibot's verdict", () => {
    const body = JSON.stringify(base).slice(1);
    for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      for (const value of ["1", "{}", "null", '"x"']) {
        const line: unknown = JSON.parse(`{"${key}":${value},${body}`);
        expect(acceptAlertLine?.(line), `${key}: ${value}`).toBe(v.is(AlertLine, line));
        expect(acceptAlertLine?.(line), `${key}: ${value}`).toBe(false);
      }
    }
  });

  test("what it passes is the value itself, equal to valibot's output", () => {
    const line = JSON.parse(JSON.stringify(base));
    expect(acceptAlertLine?.(line)).toBe(true);
    expect(v.parse(AlertLine, line)).toEqual(line);
  });

  test("a schema with a part it does not know, or one that changes the value, gets none", () => {
    const S = v.string();
    expect(acceptorOf(v.pipe(S, v.trim()))).toBeUndefined();
    expect(acceptorOf(v.optional(S, "x"))).toBeUndefined();
    expect(acceptorOf(v.fallback(S, "x"))).toBeUndefined();
    expect(acceptorOf(v.object({ a: S }))).toBeUndefined();
    expect(acceptorOf(v.strictObject({ a: v.number() }))).toBeUndefined();
    expect(acceptorOf(v.strictObject({ a: v.pipe(S, v.email()) }))).toBeUndefined();
    expect(acceptorOf(v.strictObject({ a: v.pipe(S, v.metadata({ x: 1 })) }))).toBeDefined();
  });
});
