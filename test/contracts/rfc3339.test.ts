import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { AlertLine } from "../../src/contracts/alert";
import { OccurredAt, Rfc3339 } from "../../src/contracts/common";
import { ExplicitAlert } from "../../src/contracts/task";
import { ConformanceChecker } from "../support/conformance";
import { useFreshDatabase } from "../support/db";

/**
 * The contract's timestamp check (Rfc3339: pattern, then the day-in-month
 * check on character codes) against a straightforward reference written
 * from the rule, against the exported JSON Schema (Ajv), and against what
 * PostgreSQL's timestamptz accepts, over edge cases and seeded random
 * candidates.
 */

const db = useFreshDatabase();
const checker = await ConformanceChecker.load();

/** Days in a month by the calendar, not by arithmetic (setUTCFullYear has no 1900 mapping for 0–99). */
function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

/** The rule, written the plain way: split, Number, compare. */
function reference(s: string): boolean {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/.exec(
      s,
    );
  if (m === null || s.length > 40) return false;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map(Number);
  const fraction = m[7] ?? "";
  const offsetHours = m[9] === undefined ? 0 : Number(m[9]);
  const offsetMinutes = m[10] === undefined ? 0 : Number(m[10]);
  return (
    fraction.length <= 10 && // "." and at most 9 digits
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= 15 &&
    offsetMinutes <= 59
  );
}

/** Edge cases with the verdict the rule gives them, written out by hand. */
const EDGES: Array<[string, boolean]> = [
  ["2024-05-01T12:00:00Z", true],
  ["2024-05-01t12:00:00z", true],
  ["2024-05-01 12:00:00+02:00", true],
  ["2024-05-01T12:00:00.123456789Z", true],
  ["2024-05-01T12:00:00.1234567890Z", false],
  ["2024-05-01T12:00:00.Z", false],
  ["2024-02-29T00:00:00Z", true],
  ["2023-02-29T00:00:00Z", false],
  ["2023-02-28T00:00:00Z", true],
  ["1900-02-29T00:00:00Z", false],
  ["2000-02-29T00:00:00Z", true],
  ["2100-02-29T00:00:00Z", false],
  ["0004-02-29T00:00:00Z", true],
  ["0100-02-29T00:00:00Z", false],
  ["0400-02-29T00:00:00Z", true],
  ["0000-02-29T00:00:00Z", false],
  ["0000-01-01T00:00:00Z", false],
  ["0001-01-01T00:00:00Z", true],
  ["0001-01-01T00:00:00+15:59", true],
  ["9999-12-31T23:59:59-15:59", true],
  ["9999-12-31T23:59:59.999999999-15:59", true],
  ["2024-01-01T00:00:00+16:00", false],
  ["2024-01-01T00:00:00-16:00", false],
  ["2024-01-01T00:00:00+23:59", false],
  ["2024-01-01T00:00:00+99:99", false],
  ["2024-01-01T00:00:00+01:60", false],
  ["2024-01-01T00:00:00-00:00", true],
  ["2024-04-30T00:00:00Z", true],
  ["2024-04-31T00:00:00Z", false],
  ["2024-01-31T00:00:00Z", true],
  ["2024-12-31T23:59:59Z", true],
  ["2016-12-31T23:59:60Z", false],
  ["2024-12-31T24:00:00Z", false],
  ["2024-12-31T23:60:00Z", false],
  ["2024-13-01T00:00:00Z", false],
  ["2024-00-10T00:00:00Z", false],
  ["2024-01-00T00:00:00Z", false],
  ["2024-01-32T00:00:00Z", false],
  ["2024-01-01T00:00:00", false],
  ["2024-01-01T00:00:00+0100", false],
  ["2024-01-01", false],
  ["+02024-01-01T00:00:00Z", false],
  ["2024-01-01T00:00:00Z\n", false],
  ["yesterday", false],
  ["", false],
];

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

/** Candidates near every boundary: years 0–99 and 9990–9999 often, days 28–32, offsets to 17:61. */
function randomCandidate(rand: () => number): string {
  const int = (n: number) => Math.floor(rand() * n);
  const pad = (n: number, w: number) => String(n).padStart(w, "0");
  const one = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const year = one([int(100), 9990 + int(10), int(10_000), 1896 + int(10), 100 * int(100)]);
  const day = rand() < 0.5 ? 28 + int(5) : int(33);
  const sep = one(["T", "t", " ", "x"]);
  const frac = rand() < 0.3 ? `.${"123456789012".slice(0, 1 + int(11))}` : "";
  const zone = one([
    "Z",
    "z",
    "",
    `+${pad(int(18), 2)}:${pad(int(62), 2)}`,
    `-${pad(14 + int(3), 2)}:${pad(59 + int(2), 2)}`,
  ]);
  return `${pad(year, 4)}-${pad(int(14), 2)}-${pad(day, 2)}${sep}${pad(22 + int(3), 2)}:${pad(58 + int(3), 2)}:${pad(58 + int(3), 2)}${frac}${zone}`;
}

/** RFC 3339 with an offset, ranges aside: the shapes the contract takes at all. */
const SHAPE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const RANDOM = Array.from(
  { length: 20_000 },
  (
    (rand) => () =>
      randomCandidate(rand)
  )(seeded(42)),
);
const CANDIDATES = [...EDGES.map(([s]) => s), ...RANDOM];

describe("Rfc3339, the contract's timestamp check", () => {
  test("edge cases: the verdicts written out by hand", () => {
    for (const [s, want] of EDGES) {
      expect({ s, reference: reference(s) }).toEqual({ s, reference: want });
      expect({ s, contract: v.is(Rfc3339, s) }).toEqual({ s, contract: want });
    }
  });

  test("20,000 seeded random candidates: the same verdict as the reference", () => {
    let accepted = 0;
    for (const s of RANDOM) {
      const want = reference(s);
      expect({ s, ok: v.is(Rfc3339, s) }).toEqual({ s, ok: want });
      if (want) accepted++;
    }
    // The generator reaches both sides, and the boundaries in between.
    expect(accepted).toBeGreaterThan(1000);
    expect(RANDOM.length - accepted).toBeGreaterThan(1000);
  });

  test("the exported JSON Schema (Ajv) gives the same verdict as valibot", () => {
    for (const s of CANDIDATES) {
      const ajv = checker.problems("heartbeat_response", { lease_expires_at: s }).length === 0;
      expect({ s, ajv }).toEqual({ s, ajv: v.is(Rfc3339, s) });
    }
  });

  test("what it accepts PostgreSQL stores; what PostgreSQL stores it accepts, but second 60 and 24:00:00", async () => {
    const verdicts = await db().sql.begin(async (tx) => {
      await tx`CREATE FUNCTION pg_temp.storable(s text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN PERFORM s::timestamptz; RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`;
      return tx<{ s: string; ok: boolean }[]>`
        SELECT s, pg_temp.storable(s) AS ok FROM unnest(${CANDIDATES}::text[]) AS s`;
    });
    expect(verdicts).toHaveLength(CANDIDATES.length);
    let stored = 0;
    for (const { s, ok } of verdicts) {
      const contract = v.is(Rfc3339, s);
      if (contract) expect({ s, postgres: ok }).toEqual({ s, postgres: true });
      // Refused on purpose although PostgreSQL takes them: it stores another instant's text.
      const deliberate = /[Tt ](\d{2}:\d{2}:60|24:00:00)/.test(s);
      if (ok && !deliberate && SHAPE.test(s))
        expect({ s, contract }).toEqual({ s, contract: true });
      if (ok) stored++;
    }
    expect(stored).toBeGreaterThan(2000);
  }, 60_000);
});

describe("attributes: a JSON object, never an array", () => {
  const line = {
    dedupe_key: "k",
    org_id: "acme",
    source: "s",
    severity: "low",
    title: "t",
    occurred_at: "2024-05-01T12:00:00Z",
  };
  const { org_id: _, ...explicit } = line;
  const cases: Array<[unknown, boolean]> = [
    [{}, true],
    [{ a: 1, nested: { list: [1, 2] } }, true],
    [[], false],
    [[1, 2], false],
    ["x", false],
    [null, false],
  ];
  for (const [schema, base, name] of [
    [AlertLine, line, "AlertLine"],
    [ExplicitAlert, explicit, "ExplicitAlert"],
  ] as const) {
    test(`${name}: valibot`, () => {
      for (const [attributes, want] of cases)
        expect({ attributes, ok: v.is(schema, { ...base, attributes }) }).toEqual({
          attributes,
          ok: want,
        });
    });
  }
  test("nesting within 63 levels, numbers finite and within ±2^53", () => {
    let deep: unknown = {};
    for (let i = 1; i < 63; i++) deep = { a: deep };
    const cases: Array<[unknown, boolean]> = [
      [deep, true],
      [{ a: deep }, false],
      [{ list: [[[[[]]]]] }, true],
      [{ n: 2 ** 53, m: -(2 ** 53), f: 0.1, z: -0 }, true],
      [{ n: 2 ** 53 + 2 }, false],
      [{ n: -(2 ** 53) - 2 }, false],
      [{ n: 1e300 }, false],
      [{ n: [Number.POSITIVE_INFINITY] }, false],
      [{ n: { m: Number.NEGATIVE_INFINITY } }, false],
      [{ n: Number.NaN }, false],
    ];
    for (const [attributes, want] of cases) {
      expect(v.is(AlertLine, { ...line, attributes })).toBe(want);
      expect(v.is(ExplicitAlert, { ...explicit, attributes })).toBe(want);
    }
  });

  test("100,000 levels deep is refused without overflowing the stack, with the rule as message", () => {
    const attributes = JSON.parse(`{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`);
    const result = v.safeParse(AlertLine, { ...line, attributes }, { abortEarly: true });
    expect(result.issues?.[0]?.message).toBe(
      "must nest at most 63 levels (a batch line at most 64)",
    );
    const again = v.safeParse(ExplicitAlert, { ...explicit, attributes });
    expect(again.success).toBe(false);
  });

  test("the message names the field", () => {
    const result = v.safeParse(AlertLine, { ...line, attributes: [1] }, { abortEarly: true });
    expect(result.issues?.[0]?.message).toBe("must be a JSON object (not an array)");
    expect(result.issues && v.getDotPath(result.issues[0])).toBe("attributes");
  });
});

describe("OccurredAt: PostgreSQL stores it with its date unchanged", () => {
  /** Near the two things that change a date: rounding to microseconds, and the UTC year's ends. */
  function storedCandidates(): string[] {
    const rand = seeded(7);
    const int = (n: number) => Math.floor(rand() * n);
    const one = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
    const out: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const date = one(["9999-12-31", "0001-01-01", "2024-02-28", "2023-12-31", "2024-06-15"]);
      const time = one(["23:59:59", "23:59:58", "00:00:00", "23:30:00", "00:30:00", "12:00:00"]);
      const fraction = one([
        "",
        `.${"9".repeat(1 + int(9))}`,
        `.999999${int(10)}${"0123456789".slice(0, int(3))}`,
        `.9999994${"9".repeat(int(2))}`,
        `.${String(int(1_000_000_000)).padStart(9, "0")}`,
      ]);
      const zone = one(["Z", "+00:00", "-00:00", "+01:00", "-01:00", "+15:59", "-15:59", "-00:30"]);
      out.push(`${date}T${time}${fraction.slice(0, 10)}${zone}`);
    }
    return out;
  }
  const STORED = [
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59.9999994Z",
    "9999-12-31T23:59:59.9999995Z",
    "2024-02-28T23:59:59.9999995+01:00",
    "9999-12-31T23:30:00-01:00",
    "9999-12-31T23:30:00+01:00",
    "0001-01-01T00:30:00+01:00",
    "0001-01-01T00:30:00-01:00",
    ...storedCandidates(),
  ];

  test("the contract and PostgreSQL agree on every candidate", async () => {
    const shaped = STORED.filter((s) => v.is(Rfc3339, s));
    const verdicts = await db().sql<{ s: string; same: boolean }[]>`
      SELECT s, to_char(s::timestamptz AT TIME ZONE
                  (CASE WHEN right(s, 1) = 'Z' THEN '+00:00' ELSE right(s, 6) END)::interval,
                'YYYY-MM-DD') = left(s, 10)
             AND extract(year FROM s::timestamptz AT TIME ZONE 'UTC') BETWEEN 1 AND 9999 AS same
      FROM unnest(${shaped}::text[]) AS s`;
    expect(verdicts).toHaveLength(shaped.length);
    let refused = 0;
    for (const { s, same } of verdicts) {
      expect({ s, contract: v.is(OccurredAt, s) }).toEqual({ s, contract: same });
      if (!same) refused++;
    }
    // Both sides of the rule are reached.
    expect(refused).toBeGreaterThan(200);
    expect(shaped.length - refused).toBeGreaterThan(200);
  }, 60_000);

  test("the alert contracts use it: AlertLine and ExplicitAlert", () => {
    const at = "9999-12-31T23:59:59.999999999Z";
    expect(v.is(Rfc3339, at)).toBe(true);
    expect(v.is(AlertLine.entries.occurred_at, at)).toBe(false);
    expect(v.is(ExplicitAlert.entries.occurred_at, at)).toBe(false);
  });
});
