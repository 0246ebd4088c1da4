import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { AlertLine } from "../../src/contracts/alert";
import { Rfc3339 } from "../../src/contracts/common";
import { Rfc3339Fast, SinkAlertLine } from "../../src/sink/line-schema";

/** The sink's faster AlertLine must accept and refuse exactly what the contract does. */

const EDGES = [
  "2024-05-01T12:00:00Z",
  "2024-05-01t12:00:00z",
  "2024-05-01 12:00:00+02:00",
  "2024-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "1900-02-29T00:00:00Z",
  "2000-02-29T00:00:00Z",
  "0000-02-29T00:00:00Z",
  "0004-02-29T00:00:00Z",
  "0100-02-29T00:00:00Z",
  "0400-02-29T00:00:00Z",
  "2024-04-31T00:00:00Z",
  "2024-12-31T23:59:59.999999999-23:59",
  "2024-12-31T23:59:60Z",
  "2024-12-31T24:00:00Z",
  "2024-12-31T23:60:00Z",
  "2024-13-01T00:00:00Z",
  "2024-00-10T00:00:00Z",
  "2024-01-00T00:00:00Z",
  "2024-01-01T00:00:00+99:99",
  "2024-01-01T00:00:00+24:00",
  "2024-01-01T00:00:00",
  "2024-01-01",
  "yesterday",
  "",
  "2024-01-01T00:00:00.1234567890Z",
];

function randomInstant(rand: () => number): string {
  const pick = (n: number, w: number) => String(Math.floor(rand() * n)).padStart(w, "0");
  const sep = ["T", "t", " ", "x"][Math.floor(rand() * 4)];
  const frac = rand() < 0.3 ? `.${pick(1000, 3)}` : "";
  const zone = ["Z", "z", `+${pick(30, 2)}:${pick(70, 2)}`, `-${pick(16, 2)}:00`, ""][
    Math.floor(rand() * 5)
  ];
  return `${pick(10000, 4)}-${pick(15, 2)}-${pick(34, 2)}${sep}${pick(26, 2)}:${pick(62, 2)}:${pick(62, 2)}${frac}${zone}`;
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

describe("SinkAlertLine agrees with the AlertLine contract", () => {
  test("occurred_at: edge cases and 20,000 random candidates", () => {
    const rand = seeded(42);
    const inputs = [...EDGES, ...Array.from({ length: 20_000 }, () => randomInstant(rand))];
    let accepted = 0;
    for (const s of inputs) {
      const want = v.safeParse(Rfc3339, s);
      const got = v.safeParse(Rfc3339Fast, s);
      expect({ s, ok: got.success }).toEqual({ s, ok: want.success });
      if (!want.success && !got.success)
        expect(got.issues[0]?.message).toBe(want.issues[0]?.message);
      if (want.success) accepted++;
    }
    expect(accepted).toBeGreaterThan(1000); // the generator reaches both sides
  });

  test("whole lines: same verdict and same first issue", () => {
    const base = {
      dedupe_key: "k",
      org_id: "acme",
      source: "s",
      severity: "low",
      title: "t",
      occurred_at: "2024-05-01T12:00:00Z",
    };
    const lines: unknown[] = [
      base,
      { ...base, attributes: { a: 1 } },
      { ...base, extra: 1 },
      { ...base, occurred_at: "2024-02-30T00:00:00Z" },
      { ...base, severity: "urgent" },
      { ...base, dedupe_key: "" },
      { ...base, org_id: "bad org" },
      { ...base, attributes: "x" },
      [],
      null,
    ];
    for (const line of lines) {
      const want = v.safeParse(AlertLine, line, { abortEarly: true });
      const got = v.safeParse(SinkAlertLine, line, { abortEarly: true });
      expect(got.success).toBe(want.success);
      expect(got.issues?.[0]?.message).toBe(want.issues?.[0]?.message);
    }
  });
});
