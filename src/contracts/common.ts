import * as v from "valibot";

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

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The calendar check of Rfc3339. Exported (as the very object used in the
 * pipe) so the JSON Schema export can recognise it and write it as
 * `format: date-time` (src/contracts/export.ts).
 */
export const realInstant = v.check<string, string>(
  (s) => isRealInstant(s),
  "must name a real date and time",
);

/** An RFC 3339 date-time with an explicit offset, that names a real instant. */
export const Rfc3339 = v.pipe(
  v.string(),
  v.maxLength(40),
  v.regex(RFC3339, "must be an RFC 3339 date-time with offset"),
  realInstant,
);

function isRealInstant(s: string): boolean {
  const [date = "", time = ""] = s.split(/[Tt ]/);
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi, se] = time.slice(0, 8).split(":").map(Number);
  if (y === undefined || mo === undefined || d === undefined) return false;
  if (h === undefined || mi === undefined || se === undefined) return false;
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  const inRange = mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth && h <= 23 && mi <= 59;
  return inRange && se <= 60 && !Number.isNaN(Date.parse(s.replace(" ", "T")));
}

export const Severity = v.picklist(["info", "low", "medium", "high", "critical"]);
export type Severity = v.InferOutput<typeof Severity>;

export const NDJSON = "application/x-ndjson";
