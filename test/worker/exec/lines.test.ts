import { describe, expect, test } from "bun:test";
import { LineSplitter } from "../../../src/worker/exec/lines";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function split(chunks: string[], max = 1024): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  const s = new LineSplitter(max);
  const on = (line: Uint8Array, overlong: boolean) => {
    out.push([dec(line), overlong]);
    return true;
  };
  for (const c of chunks) s.push(enc(c), on);
  s.end(on);
  return out;
}

describe("LineSplitter", () => {
  test("lines across chunk boundaries, and a last line without a newline", () => {
    expect(split(["ab", "c\nde", "f\n\ng", "h"])).toEqual([
      ["abc", false],
      ["def", false],
      ["", false],
      ["gh", false],
    ]);
  });

  test("a final newline ends the stream with no extra line", () => {
    expect(split(["a\nb\n"])).toEqual([
      ["a", false],
      ["b", false],
    ]);
  });

  test("a line over the limit is handed over cut and flagged; the next line is whole again", () => {
    expect(split(["12345", "6789\nok\n"], 4)).toEqual([
      ["1234", true],
      ["ok", false],
    ]);
    expect(split(["123456789\nok"], 4)).toEqual([
      ["1234", true],
      ["ok", false],
    ]);
  });

  test("false from the callback stops it for good", () => {
    const s = new LineSplitter(100);
    const seen: string[] = [];
    const on = (line: Uint8Array) => {
      seen.push(dec(line));
      return seen.length < 2;
    };
    expect(s.push(enc("a\nb\nc\n"), on)).toBe(false);
    expect(s.push(enc("d\n"), on)).toBe(false);
    expect(s.end(on)).toBe(false);
    expect(seen).toEqual(["a", "b"]);
  });
});
