import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { CONTRACTS } from "../../src/contracts/registry";
import { ConformanceChecker } from "../support/conformance";
import { EXAMPLES, KNOWN_DIVERGENCES, VALIBOT_ONLY } from "./examples";

// Every example against the committed JSON Schema (Ajv, independent of valibot)
// and against the valibot schema the code uses: both must say the same.
const checker = await ConformanceChecker.load();

const isKnownDivergence = (contract: string, why: string) =>
  KNOWN_DIVERGENCES.some((d) => d.contract === contract && d.why === why);

describe("contract examples", () => {
  test("every contract has at least one valid and one invalid example", () => {
    for (const c of CONTRACTS) {
      const examples = EXAMPLES[c.name];
      expect(examples, `examples for ${c.name}`).toBeDefined();
      expect(examples?.valid.length, `${c.name} valid examples`).toBeGreaterThan(0);
      expect(examples?.invalid.length, `${c.name} invalid examples`).toBeGreaterThan(0);
    }
    expect(Object.keys(EXAMPLES).sort()).toEqual(CONTRACTS.map((c) => c.name).sort());
  });

  for (const c of CONTRACTS) {
    const examples = EXAMPLES[c.name] ?? { valid: [], invalid: [] };
    test(`${c.name}: valid examples pass the exported JSON Schema and valibot`, () => {
      for (const value of examples.valid) {
        expect(checker.problems(c.name, value), JSON.stringify(value)).toEqual([]);
        expect(v.is(c.schema, value), `valibot on ${JSON.stringify(value)}`).toBe(true);
      }
    });
    test(`${c.name}: invalid examples fail the exported JSON Schema and valibot`, () => {
      for (const { why, value } of examples.invalid) {
        expect(checker.problems(c.name, value).length, `JSON Schema on: ${why}`).toBeGreaterThan(0);
        const known = isKnownDivergence(c.name, why);
        expect(
          v.is(c.schema, value),
          `valibot on: ${why}${known ? " (known divergence)" : ""}`,
        ).toBe(known);
      }
    });
  }

  test("rules JSON Schema cannot state: valibot refuses, the exported schema accepts", () => {
    for (const { contract, why, value } of VALIBOT_ONLY) {
      const entry = CONTRACTS.find((c) => c.name === contract);
      expect(entry, contract).toBeDefined();
      if (entry === undefined) continue;
      expect(v.is(entry.schema, value), `valibot on: ${why}`).toBe(false);
      expect(checker.problems(contract, value), `JSON Schema on: ${why}`).toEqual([]);
    }
  });

  test("each known divergence names an existing invalid example", () => {
    for (const d of KNOWN_DIVERGENCES) {
      const names = EXAMPLES[d.contract]?.invalid.map((e) => e.why) ?? [];
      expect(names, `${d.contract}: ${d.why}`).toContain(d.why);
    }
  });
});
