/**
 * What PostgreSQL stores exactly as sent, for the parts of an alert that the
 * pattern and type checks of the contracts cannot see: the instant a
 * timestamp becomes once rounded to microseconds, and the numbers and
 * nesting inside a JSON value. Pure functions on plain values, used by the
 * checks in common.ts.
 */

/** Deepest nesting of `attributes` itself: with the line's own object around it, 64 levels. */
export const MAX_ATTRIBUTES_DEPTH = 63;
/** Past ±2^53 a double no longer holds every integer: such a number may not be the one sent. */
export const MAX_EXACT_INTEGER = 2 ** 53;

const digit = (s: string, at: number): number => s.charCodeAt(at) - 48;
const two = (s: string, at: number): number => digit(s, at) * 10 + digit(s, at + 1);

/** C's rint() in the default rounding mode: halves go to the even neighbour. */
function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const SECONDS_PER_DAY = 86_400;

/**
 * Whether PostgreSQL's timestamptz keeps the date of an RFC 3339 string that
 * already matched the contract's pattern (`YYYY-MM-DD?hh:mm:ss[.f]offset`, so
 * the fields sit at fixed offsets). PostgreSQL rounds the fraction to
 * microseconds exactly as `rint(strtod(".f") * 1e6)` (datetime.c,
 * ParseFractionalSecond), and both sides compute that in IEEE doubles, so
 * the carry is the one PostgreSQL makes. Refused: a carry that rolls the
 * written date over (`…23:59:59.9999995`), and an instant whose UTC year
 * leaves 0001–9999 (`9999-12-31T23:30:00-01:00`, `0001-01-01T00:30:00+01:00`,
 * `9999-12-31T23:59:59.999999999Z`), which would read back as another year.
 */
export function isStoredUnchanged(s: string): boolean {
  const hour = two(s, 11);
  const minute = two(s, 14);
  const second = two(s, 17);
  let at = 19;
  let carry = 0;
  if (s[at] === ".") {
    at++;
    while (at < s.length && digit(s, at) >= 0 && digit(s, at) <= 9) at++;
    carry = rint(Number.parseFloat(`0${s.slice(19, at)}`) * 1e6) >= 1e6 ? 1 : 0;
  }
  const sign = s[at] === "-" ? -1 : 1;
  const offset = s[at] === "Z" || s[at] === "z" ? 0 : sign * (two(s, at + 1) * 60 + two(s, at + 4));
  if (carry === 1 && hour === 23 && minute === 59 && second === 59) return false;
  const utcSecondOfDay = hour * 3600 + minute * 60 + second + carry - offset * 60;
  const date = s.slice(0, 10);
  if (date === "9999-12-31") return utcSecondOfDay < SECONDS_PER_DAY;
  if (date === "0001-01-01") return utcSecondOfDay >= 0;
  return true;
}

export type JsonValueProblem = "too_deep" | "inexact_number";

/**
 * The first reason a parsed JSON value would not be stored as sent: nesting
 * past `maxDepth` (the value itself is depth 1), or a number that is not
 * finite (`1e400` parses to Infinity) or beyond ±2^53 (a 30-digit integer
 * parses to a nearby one). Iterative, so no depth of input can overflow the stack.
 */
export function jsonValueProblem(value: unknown, maxDepth: number): JsonValueProblem | undefined {
  const stack: Array<[unknown, number]> = [[value, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [v, depth] = next;
    if (typeof v === "number") {
      if (!Number.isFinite(v) || Math.abs(v) > MAX_EXACT_INTEGER) return "inexact_number";
    } else if (typeof v === "object" && v !== null) {
      if (depth > maxDepth) return "too_deep";
      for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
    }
  }
  return undefined;
}
