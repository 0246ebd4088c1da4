import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { checkChangelog } from "./changelog";
import { diffContractFiles, formatDifferences, readContractFiles } from "./diff";
import {
  docContracts,
  generatedRegion,
  NEW_DOC,
  renderContractTables,
  replaceGeneratedRegion,
} from "./docs";
import {
  type RenderedContracts,
  renderContracts,
  type WriteResult,
  writeContracts,
} from "./export";
import { parseJson } from "./json";

/**
 * What `harness contracts export` does: write the contracts (and the tables
 * of the docs), or with `--check` compare the committed copies with a fresh
 * export and say exactly what drifted.
 */

export const CHANGELOG_FILE = "CHANGELOG.md";

export class ContractsDriftError extends Error {
  override name = "ContractsDriftError";
  constructor(readonly report: string) {
    super(`contracts differ from their committed copies:\n${report}`);
  }
}

/** The generated tables for a rendered export. */
export function renderDocsRegion(rendered: RenderedContracts): string {
  const schemas = new Map([...rendered.files].map(([file, text]) => [file, parseJson(text, file)]));
  return renderContractTables(docContracts(rendered.index, schemas));
}

/** Fills the generated region of `docsFile`, creating the file with its markers if there is none. */
export async function writeDocs(docsFile: string, rendered: RenderedContracts): Promise<void> {
  const current = existsSync(docsFile) ? await readFile(docsFile, "utf8") : NEW_DOC;
  const next = replaceGeneratedRegion(current, renderDocsRegion(rendered), docsFile);
  if (next === current && existsSync(docsFile)) return;
  await mkdir(dirname(docsFile), { recursive: true });
  await writeFile(docsFile, next);
}

export async function exportContracts(options: {
  out: string;
  docs?: string;
}): Promise<WriteResult> {
  const rendered = renderContracts();
  const result = await writeContracts(options.out, rendered);
  if (options.docs !== undefined) await writeDocs(options.docs, rendered);
  return result;
}

/**
 * Every way the committed contracts can disagree with the code, one
 * paragraph each: schema drift (by contract, field and JSON path), a
 * changed schema whose version was not bumped or has no CHANGELOG line,
 * and stale generated tables in the docs.
 */
export async function checkContracts(options: { out: string; docs?: string }): Promise<string[]> {
  const rendered = renderContracts();
  const problems: string[] = [];
  const committed = existsSync(options.out) ? await readContractFiles(options.out) : new Map();
  const diffs = diffContractFiles(committed, rendered.files);
  if (diffs.length > 0) problems.push(formatDifferences(diffs));
  const changelog = join(options.out, CHANGELOG_FILE);
  const text = existsSync(changelog) ? await readFile(changelog, "utf8") : "";
  problems.push(...checkChangelog(rendered.index, text));
  if (options.docs !== undefined) {
    const doc = existsSync(options.docs) ? await readFile(options.docs, "utf8") : "";
    if (generatedRegion(doc) !== renderDocsRegion(rendered))
      problems.push(
        `${options.docs}: the generated contract tables are stale: re-export with --docs`,
      );
  }
  return problems;
}
