import { createHash } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ConversionConfig, toJsonSchema } from "@valibot/to-json-schema";
import { AnyObject, realInstant, storableJson, storedInstant } from "./common";
import { isJsonObject, type Json, type JsonObject, toJson } from "./json";
import { CONTRACTS, type ContractEntry, type ContractIndex } from "./registry";
import { MAX_TASK_PAYLOAD_BYTES, payloadWithinLimit } from "./task";

/**
 * Renders every contract of the registry as JSON Schema draft 2020-12, plus
 * `index.json`. Pure and deterministic: the same registry gives the same
 * bytes (keywords in a fixed order, properties in declaration order, two
 * spaces, a trailing newline), so the committed copies in `contracts/` can be
 * compared byte for byte.
 */

export const DIALECT = "https://json-schema.org/draft/2020-12/schema";
export const INDEX_FILE = "index.json";
const SCHEMA_SUFFIX = ".schema.json";

/** The same UUID valibot's `v.uuid()` accepts (its regex has the `i` flag, spelled out here). */
export const UUID_PATTERN = "^[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$";

export class ContractExportError extends Error {
  override name = "ContractExportError";
  constructor(
    readonly contract: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`contract ${contract}: ${message}`, options);
  }
}

/**
 * Actions JSON Schema has no keyword for, written in JSON Schema terms so the
 * export is exactly as strict as the valibot schema:
 * - `realInstant` (Rfc3339's "is this day in its month" check): `format:
 *   date-time`. Every other range (year 0001 on, hour, minute, second ≤ 59,
 *   offset within ±15:59) is already in Rfc3339's pattern, which is stricter
 *   than `date-time` wherever the two differ (leap second, offsets to 23:59);
 * - `v.uuid()`: `format: uuid` alone would also admit a `urn:uuid:` prefix
 *   in some validators, so the exact pattern goes with it;
 * - `payloadWithinLimit` (a task payload's size as JSON): no keyword says
 *   it, so a `$comment` does, and the example tests leave it out;
 * - `storedInstant` (the date survives PostgreSQL's rounding to microseconds,
 *   the UTC year stays within 0001–9999) and `storableJson` (attributes nest
 *   at most 63 levels, numbers finite and within ±2^53): no keyword either,
 *   so a `$comment` says each (test/contracts/examples.ts lists what only
 *   valibot refuses).
 * Anything else the converter cannot express makes the export fail.
 */
const overrideAction: ConversionConfig["overrideAction"] = ({ valibotAction, jsonSchema }) => {
  if (valibotAction === realInstant) {
    return {
      ...jsonSchema,
      format: "date-time",
      $comment: "a real instant PostgreSQL stores: ranges in the pattern, the day in its month",
    };
  }
  if (valibotAction === storedInstant) {
    return {
      ...jsonSchema,
      $comment:
        "a real instant PostgreSQL stores: ranges in the pattern, the day in its month; also (not expressible here) rounding the fraction to microseconds keeps the date, and the UTC year stays within 0001–9999",
    };
  }
  if (valibotAction === storableJson) {
    return {
      ...jsonSchema,
      $comment:
        "stored as sent: (not expressible here) nesting at most 63 levels, numbers finite and within ±2^53",
    };
  }
  if (valibotAction === payloadWithinLimit) {
    return {
      ...jsonSchema,
      $comment: `at most ${MAX_TASK_PAYLOAD_BYTES} bytes as JSON (UTF-8): checked by task create and the claim, no JSON Schema keyword says it`,
    };
  }
  if (valibotAction.type === "uuid") {
    if (jsonSchema.pattern !== undefined) return undefined; // the converter reports the clash
    return { ...jsonSchema, format: "uuid", pattern: UUID_PATTERN };
  }
  return undefined;
};

/**
 * Schemas JSON Schema has no converter for: `AnyObject` (a custom schema,
 * so that arrays are refused; alert attributes, task payloads) is any JSON
 * object, and `type: "object"` already refuses arrays.
 */
const overrideSchema: ConversionConfig["overrideSchema"] = ({ valibotSchema }) => {
  if (valibotSchema === AnyObject) {
    return { type: "object", additionalProperties: {}, propertyNames: { type: "string" } };
  }
  return undefined;
};

const KEYWORD_ORDER = [
  "$schema",
  "$id",
  "$comment",
  "title",
  "description",
  "type",
  "const",
  "enum",
  "format",
  "pattern",
  "not",
  "minLength",
  "maxLength",
  "minimum",
  "exclusiveMinimum",
  "maximum",
  "exclusiveMaximum",
  "items",
  "minItems",
  "maxItems",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
  "anyOf",
  "oneOf",
  "allOf",
  "$defs",
];
const rank = (key: string): number => {
  const i = KEYWORD_ORDER.indexOf(key);
  return i < 0 ? KEYWORD_ORDER.length : i;
};
/** Keywords whose object value maps names to schemas: keep their declaration order. */
const NAME_MAPS = new Set(["properties", "$defs", "patternProperties"]);

/** Fixed key order for every object; property maps keep the order fields were declared in. */
export function canonical(value: Json, keepOrder = false): Json {
  if (Array.isArray(value)) return value.map((item) => canonical(item));
  if (!isJsonObject(value)) return value;
  const keys = Object.keys(value);
  if (!keepOrder) keys.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const out: JsonObject = {};
  for (const key of keys) {
    const item = value[key];
    if (item !== undefined) out[key] = canonical(item, !keepOrder && NAME_MAPS.has(key));
  }
  return out;
}

export const schemaFile = (name: string): string => `${name}${SCHEMA_SUFFIX}`;
export const contractId = (c: { name: string; version: number }): string =>
  `urn:harness:contract:${c.name}:v${c.version}`;

/** One contract as a JSON Schema document. */
export function contractJsonSchema(entry: ContractEntry): JsonObject {
  let converted: Json;
  try {
    converted = toJson(
      toJsonSchema(entry.schema, {
        target: "draft-2020-12",
        errorMode: "throw",
        overrideAction,
        overrideSchema,
      }),
    );
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ContractExportError(entry.name, `cannot be written as JSON Schema: ${why}`, {
      cause: err,
    });
  }
  if (!isJsonObject(converted)) throw new ContractExportError(entry.name, "not a schema object");
  const doc = canonical({
    ...converted,
    $schema: DIALECT,
    $id: contractId(entry),
    title: entry.name,
    description: entry.description,
  });
  if (!isJsonObject(doc)) throw new ContractExportError(entry.name, "not a schema object");
  return doc;
}

export const render = (value: Json): string => `${JSON.stringify(value, null, 2)}\n`;

export function fingerprint(text: string): string {
  return `sha256:${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
}

export interface RenderedContracts {
  index: ContractIndex;
  /** file name → exact text, `index.json` included. */
  files: Map<string, string>;
}

/** Every contract and the index, rendered. */
export function renderContracts(entries: readonly ContractEntry[] = CONTRACTS): RenderedContracts {
  const files = new Map<string, string>();
  const index: ContractIndex = {
    format: "harness-contracts/1",
    json_schema_dialect: DIALECT,
    contracts: [],
  };
  for (const entry of entries) {
    const file = schemaFile(entry.name);
    if (files.has(file)) throw new ContractExportError(entry.name, "named twice in the registry");
    const text = render(contractJsonSchema(entry));
    files.set(file, text);
    index.contracts.push({
      name: entry.name,
      version: entry.version,
      file,
      fingerprint: fingerprint(text),
      description: entry.description,
      carriers: entry.carriers,
    });
  }
  files.set(INDEX_FILE, render(toJson(index)));
  return { index, files };
}

export interface WriteResult {
  written: string[];
  removed: string[];
}

/**
 * Writes the rendered contracts into `dir`, and removes `*.schema.json`
 * files there that no contract has any more (a renamed or dropped contract).
 */
export async function writeContracts(
  dir: string,
  rendered: RenderedContracts = renderContracts(),
): Promise<WriteResult> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [file, text] of rendered.files) {
    await writeFile(join(dir, file), text);
    written.push(file);
  }
  const removed: string[] = [];
  for (const file of await readdir(dir)) {
    if (file.endsWith(SCHEMA_SUFFIX) && !rendered.files.has(file)) {
      await rm(join(dir, file));
      removed.push(file);
    }
  }
  return { written, removed };
}
