import { describe, expect, test } from "bun:test";
import { AlertList } from "../../src/sink/rows";
import { BatchValidator } from "../../src/sink/validate";
import { goodLines, jsonl } from "./helpers";

/**
 * The validator decodes the lines a chunk ends in one call and falls back to
 * one line at a time to name a bad line: whatever the chunks, the verdict and
 * the rows must be the ones of a line-by-line reading.
 */

const CAP = 300;
const encoder = new TextEncoder();
const bytesOf = (text: string) => encoder.encode(text);
const good = goodLines("acme", "k", 6).map((l) => JSON.stringify(l));
const BOM = "\ufeff";
/** The bytes of `text` with line `at` (from 0) holding an invalid UTF-8 byte. */
function withBadByte(lines: readonly string[], at: number): Uint8Array {
  const parts = lines.map((l, i) =>
    i === at ? [...bytesOf(`${l.slice(0, -1)} `), 0xff, ...bytesOf("}\n")] : [...bytesOf(`${l}\n`)],
  );
  return Uint8Array.from(parts.flat());
}

/** Each body, and what a line-by-line reading says of it: how many rows, or the reason. */
const bodies: [string, Uint8Array, number | string][] = [
  ["valid", bytesOf(jsonl(good)), 6],
  [
    "a byte-order mark beginning the first and a later line",
    bytesOf(jsonl([BOM + good[0], good[1], BOM + good[2], good[3]])),
    4,
  ],
  [
    "two marks beginning a line",
    bytesOf(jsonl([good[0], BOM + BOM + good[1]])),
    "line 2: not JSON",
  ],
  ["invalid UTF-8 on line 3", withBadByte(good, 2), "line 3: invalid UTF-8"],
  [
    "invalid UTF-8 on line 2, a line over the cap after it",
    withBadByte([good[0] ?? "", good[1] ?? "", "x".repeat(CAP + 5), good[3] ?? ""], 1),
    "line 2: invalid UTF-8",
  ],
  [
    "a line over the cap",
    bytesOf(jsonl([good[0], "y".repeat(CAP), good[2]])),
    `line 2: longer than ${CAP} bytes`,
  ],
  [
    "a line over the cap, invalid UTF-8 after it",
    withBadByte([good[0] ?? "", "y".repeat(CAP), good[2] ?? "", good[3] ?? ""], 3),
    `line 2: longer than ${CAP} bytes`,
  ],
  ["an empty line", bytesOf(`${good[0]}\n\n${good[1]}\n`), "line 2: empty line"],
  [
    "not JSON on line 4",
    bytesOf(jsonl([...good.slice(0, 3), "{nope", good[4]])),
    "line 4: not JSON",
  ],
  [
    "truncated",
    bytesOf(jsonl(good).slice(0, -1)),
    'line 6: truncated (the batch does not end with "\\n")',
  ],
  ["empty", new Uint8Array(), "empty batch"],
];

/** Seeded, so that a failure can be replayed. */
function splitsOf(length: number, seed: number): number[] {
  let x = seed;
  const cuts: number[] = [];
  for (let at = 0; at < length; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    at += 1 + (x % 97);
    if (at < length) cuts.push(at);
  }
  return cuts;
}

function verdict(body: Uint8Array, cuts: readonly number[]) {
  const v = new BatchValidator("acme", body.byteLength, CAP);
  let from = 0;
  for (const to of [...cuts, body.byteLength]) {
    const failure = v.push(body.subarray(from, to));
    if (failure !== undefined) return { failure };
    from = to;
  }
  const checked = v.end();
  if (!checked.ok) return { failure: checked.failure };
  if (!(checked.rows instanceof AlertList)) throw new Error("a small batch is held as a list");
  return { rows: checked.rows.columns() };
}

describe("batch validation, whatever the chunks", () => {
  for (const [name, body, expected] of bodies) {
    test(name, () => {
      const whole = verdict(body, []);
      if (typeof expected === "number") expect(whole.rows?.dedupeKeys).toHaveLength(expected);
      else expect(whole.failure?.reason).toBe(expected);
      // Byte by byte: every line but an empty one is read alone.
      const byteByByte = verdict(
        body,
        Array.from({ length: Math.max(0, body.byteLength - 1) }, (_, i) => i + 1),
      );
      expect(byteByByte).toEqual(whole);
      for (let seed = 1; seed <= 20; seed++) {
        expect(verdict(body, splitsOf(body.byteLength, seed))).toEqual(whole);
      }
    });
  }
});
