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
 * Only those two dates and that one second can fail, so the common case
 * reads a few characters and returns.
 */
export function isStoredUnchanged(s: string): boolean {
  const lastDay = s.startsWith("9999-12-31");
  const firstDay = s.startsWith("0001-01-01");
  const lastSecond = s.startsWith("23:59:59", 11);
  if (!lastDay && !firstDay && !lastSecond) return true;
  let at = 19;
  let carry = 0;
  if (s[at] === ".") {
    at++;
    while (at < s.length && digit(s, at) >= 0 && digit(s, at) <= 9) at++;
    carry = rint(Number.parseFloat(`0${s.slice(19, at)}`) * 1e6) >= 1e6 ? 1 : 0;
  }
  if (carry === 1 && lastSecond) return false;
  const sign = s[at] === "-" ? -1 : 1;
  const offset = s[at] === "Z" || s[at] === "z" ? 0 : sign * (two(s, at + 1) * 60 + two(s, at + 4));
  const utcSecondOfDay = two(s, 11) * 3600 + two(s, 14) * 60 + two(s, 17) + carry - offset * 60;
  if (lastDay) return utcSecondOfDay < SECONDS_PER_DAY;
  if (firstDay) return utcSecondOfDay >= 0;
  return true;
}

export type JsonValueProblem = "too_deep" | "inexact_number";

/**
 * The first reason a parsed JSON value would not be stored as sent: nesting
 * past `maxDepth` (the value itself is depth 1), or a number that is not
 * finite (`1e400` parses to Infinity) or beyond ±2^53 (a 30-digit integer
 * parses to a nearby one). It recurses at most `maxDepth + 1` deep, whatever
 * the depth of its input, so it cannot overflow the stack.
 */
export function jsonValueProblem(
  value: unknown,
  maxDepth: number,
  depth = 1,
): JsonValueProblem | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && Math.abs(value) <= MAX_EXACT_INTEGER
      ? undefined
      : "inexact_number";
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (depth > maxDepth) return "too_deep";
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    const problem = jsonValueProblem(item, maxDepth, depth + 1);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
