import { isJsonObject, type Json, type JsonObject, jsonEqual } from "./json";
import type { ContractIndex } from "./registry";

/**
 * The tables of docs/architecture/contracts.md, generated from the exported
 * JSON Schemas: one table per contract (field, type, required, constraints),
 * written between the two markers below. Prose around them is left alone.
 */

export const DOCS_BEGIN = "<!-- contracts:generated:begin -->";
export const DOCS_END = "<!-- contracts:generated:end -->";

export class DocsMarkerError extends Error {
  override name = "DocsMarkerError";
}

export interface DocContract {
  name: string;
  version: number;
  file: string;
  schema: JsonObject;
}

/** Left out when matching a field to a contract; `$comment` stays, it may carry a rule (task_payload's size). */
const ANNOTATIONS = new Set(["$schema", "$id", "title", "description"]);

function body(schema: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(schema)) if (!ANNOTATIONS.has(k)) out[k] = v;
  return out;
}

/** Markdown table cells: pipes escaped, newlines flattened. */
const cell = (text: string): string => text.replaceAll("|", "\\|").replaceAll("\n", " ");
const code = (value: Json): string => `\`${JSON.stringify(value)}\``;

function typeOf(s: JsonObject, seeAlso: (s: JsonObject) => string | undefined): string {
  const other = seeAlso(s);
  if (other !== undefined) return `object (\`${other}\`)`;
  if (s.const !== undefined) return code(s.const);
  if (Array.isArray(s.enum)) return s.enum.map(code).join(" or ");
  if (Array.isArray(s.anyOf))
    return s.anyOf
      .filter(isJsonObject)
      .map((b) => typeOf(b, seeAlso))
      .join(" or ");
  if (s.type === "array") {
    const items = isJsonObject(s.items) ? typeOf(s.items, seeAlso) : "any";
    return `array of ${items}`;
  }
  if (s.type === "object" && s.properties === undefined && isJsonObject(s.additionalProperties))
    return "object (any keys)";
  return typeof s.type === "string" ? s.type : "any";
}

function constraintsOf(s: JsonObject): string[] {
  const out: string[] = [];
  if (s.format === "uuid") out.push("UUID");
  else if (s.format === "date-time") out.push("RFC 3339 date-time, a real instant");
  else if (typeof s.format === "string") out.push(`format ${s.format}`);
  if (typeof s.pattern === "string" && s.format !== "uuid") out.push(`matches \`${s.pattern}\``);
  if (isJsonObject(s.not) && typeof s.not.pattern === "string" && s.format !== "date-time")
    out.push(`does not match \`${s.not.pattern}\``);
  const range = (lo: Json | undefined, hi: Json | undefined, what: string) => {
    if (typeof lo === "number" && typeof hi === "number") out.push(`${what} ${lo}..${hi}`);
    else if (typeof lo === "number") out.push(`${what} ≥ ${lo}`);
    else if (typeof hi === "number") out.push(`${what} ≤ ${hi}`);
  };
  range(s.minLength, s.maxLength, "length");
  range(s.minimum, s.maximum, "value");
  range(s.minItems, s.maxItems, "items");
  if (s.type === "object" && s.additionalProperties === false) out.push("no unknown fields");
  if (Array.isArray(s.anyOf))
    for (const branch of s.anyOf.filter(isJsonObject)) {
      const inner = constraintsOf(branch).filter((c) => c !== "no unknown fields");
      if (inner.length > 0) out.push(`as ${typeOf(branch, () => undefined)}: ${inner.join(", ")}`);
    }
  return out;
}

interface Row {
  field: string;
  type: string;
  required: boolean;
  constraints: string[];
}

function rows(
  schema: JsonObject,
  prefix: string,
  seeAlso: (s: JsonObject) => string | undefined,
  out: Row[],
): Row[] {
  const props = isJsonObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const [name, sub] of Object.entries(props)) {
    if (!isJsonObject(sub)) continue;
    const field = `${prefix}${name}`;
    out.push({
      field,
      type: typeOf(sub, seeAlso),
      required: required.includes(name),
      constraints: constraintsOf(sub),
    });
    if (seeAlso(sub) !== undefined) continue;
    for (const nested of nestedObjects(sub))
      rows(nested.schema, `${field}${nested.suffix}.`, seeAlso, out);
  }
  return out;
}

/** Objects with fields inside a field's schema: itself, array items, anyOf branches. */
function nestedObjects(s: JsonObject): Array<{ schema: JsonObject; suffix: string }> {
  if (isJsonObject(s.properties)) return [{ schema: s, suffix: "" }];
  if (s.type === "array" && isJsonObject(s.items))
    return nestedObjects(s.items).map((n) => ({ ...n, suffix: `[]${n.suffix}` }));
  if (Array.isArray(s.anyOf)) return s.anyOf.filter(isJsonObject).flatMap(nestedObjects);
  return [];
}

/** The generated region: one section and table per contract. */
export function renderContractTables(contracts: readonly DocContract[]): string {
  const bodies = contracts.map((c) => ({ name: c.name, body: body(c.schema) }));
  const parts: string[] = [
    "_Generated from `contracts/*.schema.json` by `harness contracts export --docs`; do not edit by hand._",
  ];
  for (const c of contracts) {
    const seeAlso = (s: JsonObject) =>
      bodies.find((b) => b.name !== c.name && jsonEqual(b.body, body(s)))?.name;
    const description = typeof c.schema.description === "string" ? c.schema.description : "";
    parts.push(
      `### \`${c.name}\` v${c.version}`,
      `${description} Schema: [\`contracts/${c.file}\`](../../contracts/${c.file}).`,
    );
    const table = rows(c.schema, "", seeAlso, []);
    if (table.length === 0) {
      parts.push(`Type: ${typeOf(c.schema, () => undefined)}.`);
      continue;
    }
    const strict = c.schema.additionalProperties === false ? " Unknown fields are refused." : "";
    if (strict) parts[parts.length - 1] += strict;
    parts.push(
      [
        "| field | type | required | constraints |",
        "|---|---|---|---|",
        ...table.map(
          (r) =>
            `| \`${r.field}\` | ${cell(r.type)} | ${r.required ? "yes" : "no"} | ${cell(r.constraints.join("; "))} |`,
        ),
      ].join("\n"),
    );
  }
  return parts.join("\n\n");
}

/** Builds the doc inputs from an index and its parsed schema files. */
export function docContracts(
  index: ContractIndex,
  schemas: ReadonlyMap<string, Json>,
): DocContract[] {
  return index.contracts.map((c) => {
    const schema = schemas.get(c.file);
    if (!isJsonObject(schema)) throw new Error(`contracts: ${c.file} is missing or not a schema`);
    return { name: c.name, version: c.version, file: c.file, schema };
  });
}

/** Replaces what lies between the markers; the markers themselves stay. */
export function replaceGeneratedRegion(doc: string, generated: string, where: string): string {
  const begin = doc.indexOf(DOCS_BEGIN);
  const end = doc.indexOf(DOCS_END);
  if (begin < 0 || end < 0 || end < begin)
    throw new DocsMarkerError(
      `${where}: needs the lines ${DOCS_BEGIN} and ${DOCS_END}, in that order`,
    );
  return `${doc.slice(0, begin + DOCS_BEGIN.length)}\n\n${generated}\n\n${doc.slice(end)}`;
}

/** The text between the markers, as replaceGeneratedRegion writes it. */
export function generatedRegion(doc: string): string | undefined {
  const begin = doc.indexOf(DOCS_BEGIN);
  const end = doc.indexOf(DOCS_END);
  if (begin < 0 || end < begin) return undefined;
  return doc.slice(begin + DOCS_BEGIN.length, end).trim();
}

export const NEW_DOC = `# Contracts\n\n${DOCS_BEGIN}\n${DOCS_END}\n`;
