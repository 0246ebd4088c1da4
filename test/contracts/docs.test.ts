import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  DOCS_BEGIN,
  DOCS_END,
  DocsMarkerError,
  generatedRegion,
  replaceGeneratedRegion,
} from "../../src/contracts/docs";
import { renderContracts } from "../../src/contracts/export";
import { checkContracts, renderDocsRegion, writeDocs } from "../../src/contracts/freeze";
import { isJsonObject, parseJson } from "../../src/contracts/json";

const ROOT = resolve(import.meta.dir, "..", "..");
const DOC = join(ROOT, "docs/architecture/contracts.md");

describe("docs/architecture/contracts.md", () => {
  test("its generated tables are those of the current contracts", async () => {
    const doc = await readFile(DOC, "utf8");
    const region = generatedRegion(doc);
    expect(region, `${DOC} has no ${DOCS_BEGIN} … ${DOCS_END} region`).toBeDefined();
    if (region !== renderDocsRegion(renderContracts()))
      throw new Error(
        "the contract tables in docs/architecture/contracts.md are stale: run `harness contracts export --docs docs/architecture/contracts.md`",
      );
  });

  test("every field of every contract has a row, with its required flag", () => {
    const rendered = renderContracts();
    const region = renderDocsRegion(rendered);
    for (const c of rendered.index.contracts) {
      const schema = parseJson(rendered.files.get(c.file) ?? "", c.file);
      if (!isJsonObject(schema)) throw new Error(c.file);
      const section = region.split(`### \`${c.name}\` v${c.version}`)[1]?.split("\n### ")[0] ?? "";
      if (!isJsonObject(schema.properties)) {
        // A contract without fields (task_payload: any object) says its type instead.
        expect(section, c.name).toContain("Type: object");
        continue;
      }
      const required = Array.isArray(schema.required) ? schema.required : [];
      for (const field of Object.keys(schema.properties)) {
        const flag = required.includes(field) ? "yes" : "no";
        expect(section, `${c.name}.${field}`).toMatch(
          new RegExp(`^\\| \`${field}\` \\| [^\\n]* \\| ${flag} \\|`, "m"),
        );
      }
    }
  });

  test("a stale region is caught (the check cannot pass vacuously)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "harness-docs-"));
    try {
      const doc = join(dir, "contracts.md");
      await writeDocs(doc, renderContracts());
      const out = join(ROOT, "contracts");
      expect(await checkContracts({ out, docs: doc })).toEqual([]);
      const text = await readFile(doc, "utf8");
      await writeFile(
        doc,
        text.replace(
          "| `attempt` | integer | yes | value 1..1000000 |",
          "| `attempt` | integer | no | |",
        ),
      );
      const problems = await checkContracts({ out, docs: doc });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain("generated contract tables are stale");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("filling the region keeps the prose around it and is idempotent", () => {
    const doc = `# Title\n\nProse before.\n\n${DOCS_BEGIN}\nold tables\n${DOCS_END}\n\nProse after.\n`;
    const once = replaceGeneratedRegion(doc, "NEW", "doc");
    expect(once).toBe(
      `# Title\n\nProse before.\n\n${DOCS_BEGIN}\n\nNEW\n\n${DOCS_END}\n\nProse after.\n`,
    );
    expect(replaceGeneratedRegion(once, "NEW", "doc")).toBe(once);
    expect(generatedRegion(once)).toBe("NEW");
  });

  test("a document without both markers, in order, is refused", () => {
    expect(() => replaceGeneratedRegion("# no markers\n", "x", "doc.md")).toThrow(DocsMarkerError);
    expect(() => replaceGeneratedRegion(`${DOCS_END}\n${DOCS_BEGIN}\n`, "x", "doc.md")).toThrow(
      "doc.md: needs the lines",
    );
  });

  test("a missing document is created with a heading and the markers", async () => {
    const dir = await mkdtemp(join(tmpdir(), "harness-docs-"));
    try {
      const doc = join(dir, "sub", "contracts.md");
      await writeDocs(doc, renderContracts());
      const text = await readFile(doc, "utf8");
      expect(text.startsWith(`# Contracts\n\n${DOCS_BEGIN}\n`)).toBe(true);
      expect(text.trimEnd().endsWith(DOCS_END)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
