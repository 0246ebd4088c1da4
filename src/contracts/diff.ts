import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { INDEX_FILE } from "./export";
import { isJsonObject, type Json, jsonEqual, parseJson } from "./json";

/**
 * Compares two sets of exported contract files (file name → text) and says,
 * for each difference, which contract, which field and which JSON path.
 */

export interface ContractDifference {
  /** The contract's name, or `index` for index.json. */
  contract: string;
  file: string;
  /** JSON path inside the file, `$` for the whole document. */
  path: string;
  /** The wire field the path is about (`payload.alerts[].title`), when there is one. */
  field?: string;
  change: "added" | "removed" | "changed" | "missing file" | "extra file" | "formatting";
  expected?: Json;
  actual?: Json;
}

const contractOf = (file: string): string =>
  file === INDEX_FILE ? "index" : file.replace(/\.schema\.json$/, "");

/** `$.properties.payload.properties.alerts.anyOf[1].items.properties.title` → `payload.alerts[].title`. */
export function fieldOf(path: string): string | undefined {
  const parts = path.match(/\.[^.[]+|\[\d+\]/g) ?? [];
  const names: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === ".properties") {
      const name = parts[i + 1];
      if (name === undefined) break;
      names.push(name.slice(1));
      i++;
    } else if (part === ".items" && names.length > 0) {
      names[names.length - 1] += "[]";
    }
  }
  return names.length > 0 ? names.join(".") : undefined;
}

const isPrimitive = (value: Json): boolean => value === null || typeof value !== "object";

/** The field a difference is about; an item of `required` names its own field. */
function fieldOfDifference(
  d: Pick<ContractDifference, "path" | "expected" | "actual">,
): string | undefined {
  const item = d.expected ?? d.actual;
  if (d.path.endsWith(".required") && typeof item === "string")
    return fieldOf(`${d.path.slice(0, -".required".length)}.properties.${item}`);
  return fieldOf(d.path);
}

const keyPath = (path: string, key: string): string =>
  /^[A-Za-z_$][\w$-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;

function diffJson(
  expected: Json,
  actual: Json,
  path: string,
  out: Array<Pick<ContractDifference, "path" | "change" | "expected" | "actual">>,
): void {
  if (isJsonObject(expected) && isJsonObject(actual)) {
    for (const [key, value] of Object.entries(expected)) {
      const other = actual[key];
      if (other === undefined)
        out.push({ path: keyPath(path, key), change: "removed", expected: value });
      else diffJson(value, other, keyPath(path, key), out);
    }
    for (const [key, value] of Object.entries(actual)) {
      if (!(key in expected))
        out.push({ path: keyPath(path, key), change: "added", actual: value });
    }
    return;
  }
  if (
    Array.isArray(expected) &&
    Array.isArray(actual) &&
    expected.every(isPrimitive) &&
    actual.every(isPrimitive)
  ) {
    // `required`, `enum`: say which items came and went rather than print both lists.
    const removed = expected.filter((item) => !actual.includes(item));
    const added = actual.filter((item) => !expected.includes(item));
    for (const item of removed) out.push({ path, change: "removed", expected: item });
    for (const item of added) out.push({ path, change: "added", actual: item });
    if (removed.length === 0 && added.length === 0 && !jsonEqual(expected, actual))
      out.push({ path, change: "changed", expected, actual });
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual) && expected.length === actual.length) {
    expected.forEach((item, i) => {
      const other = actual[i];
      if (other !== undefined) diffJson(item, other, `${path}[${i}]`, out);
    });
    return;
  }
  if (!jsonEqual(expected, actual)) out.push({ path, change: "changed", expected, actual });
}

/**
 * `expected` is the committed copy (contracts/), `actual` a fresh export.
 * Text that differs while the JSON is equal is reported as `formatting`.
 */
export function diffContractFiles(
  expected: ReadonlyMap<string, string>,
  actual: ReadonlyMap<string, string>,
): ContractDifference[] {
  const diffs: ContractDifference[] = [];
  const files = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const file of files) {
    const contract = contractOf(file);
    const before = expected.get(file);
    const after = actual.get(file);
    if (before === undefined) {
      diffs.push({ contract, file, path: "$", change: "missing file" });
      continue;
    }
    if (after === undefined) {
      diffs.push({ contract, file, path: "$", change: "extra file" });
      continue;
    }
    if (before === after) continue;
    const found: Array<Pick<ContractDifference, "path" | "change" | "expected" | "actual">> = [];
    diffJson(
      parseJson(before, `committed ${file}`),
      parseJson(after, `exported ${file}`),
      "$",
      found,
    );
    if (found.length === 0) diffs.push({ contract, file, path: "$", change: "formatting" });
    for (const d of found) {
      const field = fieldOfDifference(d);
      diffs.push({ contract, file, ...d, ...(field === undefined ? {} : { field }) });
    }
  }
  return diffs;
}

const show = (value: Json | undefined): string => {
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** One line per difference, grouped by contract. */
export function formatDifferences(diffs: readonly ContractDifference[]): string {
  const lines: string[] = [];
  let current = "";
  for (const d of diffs) {
    if (d.contract !== current) {
      current = d.contract;
      lines.push(`contract ${d.contract} (${d.file}):`);
    }
    const where = d.field === undefined ? d.path : `field ${d.field} at ${d.path}`;
    switch (d.change) {
      case "changed":
        lines.push(`  ${where}: ${show(d.expected)} -> ${show(d.actual)}`);
        break;
      case "added":
        lines.push(
          `  ${where}: added ${show(d.actual)}${d.path.endsWith(".required") ? " (now required)" : ""}`,
        );
        break;
      case "removed":
        lines.push(
          `  ${where}: removed ${show(d.expected)}${d.path.endsWith(".required") ? " (no longer required)" : ""}`,
        );
        break;
      case "missing file":
        lines.push(
          "  exported but not in the committed folder (a new contract, or not exported yet)",
        );
        break;
      case "extra file":
        lines.push("  committed but no longer exported: a removed or renamed contract?");
        break;
      case "formatting":
        lines.push("  same JSON, different text (key order or formatting): re-export");
        break;
    }
  }
  return lines.join("\n");
}

/** Reads `index.json` and every `*.schema.json` of a contracts folder (file name → text). */
export async function readContractFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const file of (await readdir(dir)).sort()) {
    if (file === INDEX_FILE || file.endsWith(".schema.json"))
      files.set(file, await readFile(join(dir, file), "utf8"));
  }
  return files;
}
