/** Plain JSON values, checked at the edge instead of cast. */

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export class NotJsonError extends Error {
  override name = "NotJsonError";
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path}: ${what} is not JSON`);
  }
}

/** Checks that a value is plain JSON (no undefined, functions, NaN…) and returns it typed. */
export function toJson(value: unknown, path = "$"): Json {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new NotJsonError(path, String(value));
    return value;
  }
  if (Array.isArray(value)) return value.map((item, i) => toJson(item, `${path}[${i}]`));
  if (typeof value === "object") {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) out[key] = toJson(item, `${path}.${key}`);
    return out;
  }
  throw new NotJsonError(path, typeof value);
}

export function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses JSON text into a checked value; the error names `where`. */
export function parseJson(text: string, where: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not valid JSON`, { cause: err });
  }
  return toJson(parsed);
}

/** Deep equality of JSON values; object key order does not matter. */
export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => {
      const other = b[i];
      return other !== undefined && jsonEqual(item, other);
    });
  }
  if (!isJsonObject(a) || !isJsonObject(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k];
    const y = b[k];
    return x !== undefined && y !== undefined && jsonEqual(x, y);
  });
}
