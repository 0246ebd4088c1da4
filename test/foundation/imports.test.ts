import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/**
 * No import cycles in src/: every module can be read (and loaded) after the
 * ones it imports. Type-only and dynamic imports count too — a cycle through
 * types still means two modules that cannot be understood one at a time.
 */

const SRC = resolve(import.meta.dir, "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

const SPECIFIERS = [
  /\b(?:import|export)\s+(?:type\s+)?[^;'"]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
];

/** The src/ modules a module imports (relative specifiers; packages and JSON are not ours). */
function importsOf(file: string, text: string): string[] {
  const found = new Set<string>();
  for (const pattern of SPECIFIERS) {
    for (const m of text.matchAll(pattern)) {
      const spec = m[1];
      if (spec === undefined || !spec.startsWith(".")) continue;
      const base = resolve(dirname(file), spec);
      if (!base.endsWith(".ts") && existsSync(base) && statSync(base).isFile()) continue;
      const target = [base, `${base}.ts`, join(base, "index.ts")].find(
        (p) => p.endsWith(".ts") && existsSync(p),
      );
      if (target === undefined) throw new Error(`${file}: cannot resolve ${spec}`);
      found.add(target);
    }
  }
  return [...found];
}

/** Every cycle's modules, found by depth-first search (one cycle per back edge). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

describe("src/ imports", () => {
  test("the cycle finder finds a cycle, a self-import and none in a tree", () => {
    const cyclic = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a"]],
      ["d", ["d"]],
    ]);
    expect(findCycles(cyclic)).toEqual([
      ["a", "b", "c", "a"],
      ["d", "d"],
    ]);
    const tree = new Map([
      ["a", ["b", "c"]],
      ["b", ["c"]],
      ["c", []],
    ]);
    expect(findCycles(tree)).toEqual([]);
  });

  test("the import parser sees static, type-only, re-export and dynamic imports", () => {
    const file = join(SRC, "queue/pg/backend.ts");
    const text = [
      'import { a } from "../seam";',
      'import type {\n  B,\n} from "./consumer";',
      'export { c } from "./admin";',
      'const d = await import("./signal");',
      'import * as v from "valibot";',
    ].join("\n");
    expect(importsOf(file, text).map((p) => relative(SRC, p))).toEqual([
      "queue/seam.ts",
      "queue/pg/consumer.ts",
      "queue/pg/admin.ts",
      "queue/pg/signal.ts",
    ]);
  });

  const graph = () => {
    const g = new Map<string, string[]>();
    for (const file of sourceFiles(SRC)) g.set(file, importsOf(file, readFileSync(file, "utf8")));
    return g;
  };

  test("no module of src/ imports itself through others", () => {
    const g = graph();
    expect(g.size).toBeGreaterThan(50);
    const cycles = findCycles(g).map((c) => c.map((p) => relative(SRC, p)).join(" → "));
    expect(cycles).toEqual([]);
  });

  test("the worker reaches the state database only through the queue seam", () => {
    // Its modules import neither the database layer nor a queue backend: only
    // main.ts opens the backend the configuration names (src/queue/open.ts).
    const worker = [...graph()].filter(([file]) => relative(SRC, file).startsWith("worker/"));
    expect(worker.length).toBeGreaterThan(5);
    const reached = worker.flatMap(([file, imports]) =>
      imports
        .map((i) => relative(SRC, i))
        .filter((i) => i.startsWith("db/") || i.startsWith("queue/pg/"))
        .map((i) => `${relative(SRC, file)} → ${i}`),
    );
    expect(reached).toEqual([]);
  });
});
