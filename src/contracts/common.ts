import * as v from "valibot";
import { isStoredUnchanged, jsonValueProblem, MAX_ATTRIBUTES_DEPTH } from "./storable";

/** Building blocks shared by the wire contracts. */

export const Uuid = v.pipe(v.string(), v.uuid("must be a UUID"));

export const OrgId = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(64),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be letters, digits, '_', '.' or '-'"),
);

export const Attempt = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000));

export const LeaseToken = Uuid;

/**
 * RFC 3339 date-time with an explicit offset, narrowed to what PostgreSQL's
 * timestamptz stores: year 0001–9999 (no year 0000), month 01–12, day 01–31,
 * hour 00–23, minute and second 00–59, offset at most ±15:59. Second 60 (a
 * leap second) is refused: PostgreSQL would silently store the next minute's
 * :00 instead, and JavaScript's Date cannot parse it. Every range is in the
 * pattern, so the exported JSON Schema says it too; only "is this day in
 * its month" is left to `realInstant`.
 */
const YEAR = "(?:000[1-9]|00[1-9]\\d|0[1-9]\\d{2}|[1-9]\\d{3})";
const MONTH = "(?:0[1-9]|1[0-2])";
const DAY = "(?:0[1-9]|[12]\\d|3[01])";
const TIME = "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?";
const OFFSET = "(?:[Zz]|[+-](?:0\\d|1[0-5]):[0-5]\\d)";
const RFC3339 = new RegExp(`^${YEAR}-${MONTH}-${DAY}[Tt ]${TIME}${OFFSET}$`);

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Proleptic Gregorian, as PostgreSQL counts: every year, 1–99 included. */
function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const digit = (s: string, at: number): number => s.charCodeAt(at) - 48;

/**
 * Whether the day of a string that matched RFC3339 exists in its month
 * (`YYYY-MM-DD…`: the fields sit at fixed offsets, so they are read as
 * character codes, with no splitting and no Date). On other strings the
 * answer means nothing, but it never throws.
 */
export function isRealInstant(s: string): boolean {
  const day = digit(s, 8) * 10 + digit(s, 9);
  if (day <= 28) return day >= 1;
  const month = digit(s, 5) * 10 + digit(s, 6);
  if (month === 2) {
    const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3);
    return day === 29 && isLeapYear(year);
  }
  return day <= (DAYS_IN_MONTH[month - 1] ?? 0);
}

/**
 * The calendar check of Rfc3339. Exported (as the very object used in the
 * pipe) so the JSON Schema export can recognise it and write it as
 * `format: date-time` (src/contracts/export.ts).
 */
export const realInstant = v.check<string, string>(isRealInstant, "must name a real date and time");

/** An RFC 3339 date-time with an explicit offset, that names a real instant PostgreSQL can store. */
export const Rfc3339 = v.pipe(
  v.string(),
  v.maxLength(40),
  v.regex(
    RFC3339,
    "must be an RFC 3339 date-time with offset (year 0001–9999, hour ≤ 23, minute and second ≤ 59, offset within ±15:59)",
  ),
  realInstant,
);

/**
 * Any JSON object, never an array. Not `v.record()`: that takes arrays too
 * (they are objects to JavaScript) and hands on a copy, so no check after it
 * could see the array. Exported so the JSON Schema export can write it
 * (src/contracts/export.ts).
 */
export const AnyObject = v.custom<{ [key: string]: unknown }>(
  (input) => typeof input === "object" && input !== null && !Array.isArray(input),
  "must be a JSON object (not an array)",
);

const JSON_VALUE_MESSAGES = {
  too_deep: `must nest at most ${MAX_ATTRIBUTES_DEPTH} levels (a batch line at most ${MAX_ATTRIBUTES_DEPTH + 1})`,
  inexact_number: "must hold only finite numbers within ±2^53, which are stored exactly",
} as const;

/**
 * What `attributes` may hold so that it is stored as sent: nesting within
 * MAX_ATTRIBUTES_DEPTH, and only numbers a double holds exactly (finite,
 * within ±2^53). Exported, as the object used in the pipe, for the export.
 */
export const storableJson = v.rawCheck<{ [key: string]: unknown }>(({ dataset, addIssue }) => {
  if (!dataset.typed) return;
  const problem = jsonValueProblem(dataset.value, MAX_ATTRIBUTES_DEPTH);
  if (problem !== undefined) addIssue({ message: JSON_VALUE_MESSAGES[problem] });
});

/** Free-form attributes of an alert: a JSON object with any keys, stored as sent. */
export const Attributes = v.pipe(AnyObject, storableJson);

/**
 * The instant an alert occurred: an Rfc3339 that PostgreSQL stores with its
 * date unchanged. timestamptz keeps microseconds, so a longer fraction is
 * rounded: refused when that rounding rolls the written date over, or when
 * the instant's UTC year leaves 0001–9999 (src/contracts/storable.ts).
 * Exported, as the object used in the pipe, for the JSON Schema export.
 */
export const storedInstant = v.check<string, string>(
  isStoredUnchanged,
  "must keep its date once PostgreSQL rounds it to microseconds, and stay within years 0001–9999 in UTC",
);

export const OccurredAt = v.pipe(Rfc3339, storedInstant);

export const Severity = v.picklist(["info", "low", "medium", "high", "critical"]);
export type Severity = v.InferOutput<typeof Severity>;

export const NDJSON = "application/x-ndjson";
