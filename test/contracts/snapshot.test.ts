import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { checkChangelog } from "../../src/contracts/changelog";
import { diffContractFiles, formatDifferences, readContractFiles } from "../../src/contracts/diff";
import { DIALECT, INDEX_FILE, renderContracts, writeContracts } from "../../src/contracts/export";
import { ClaimResponse } from "../../src/contracts/http";
import { parseJson } from "../../src/contracts/json";
import { CONTRACTS, type ContractEntry, ContractIndex } from "../../src/contracts/registry";
import { runHarness } from "../support/processes";

const COMMITTED = resolve(import.meta.dir, "..", "..", "contracts");

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "harness-contracts-"));
}

/** The registry with one contract's schema swapped, as a deliberate change would. */
function altered(name: string, schema: v.GenericSchema, version?: number): ContractEntry[] {
  return CONTRACTS.map((c) =>
    c.name === name ? { ...c, schema, ...(version === undefined ? {} : { version }) } : c,
  );
}

describe("contracts snapshot", () => {
  test("a fresh export through the real CLI is byte for byte the committed contracts/", async () => {
    const out = await tempDir();
    try {
      const run = await runHarness(["contracts", "export", "--out", out], {});
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      const diffs = diffContractFiles(
        await readContractFiles(COMMITTED),
        await readContractFiles(out),
      );
      if (diffs.length > 0)
        throw new Error(
          `contracts/ is out of date; re-export with \`harness contracts export\`, bump each changed contract's version and add a CHANGELOG line:\n${formatDifferences(diffs)}`,
        );
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 30_000);

  test("every contract's current version and fingerprint is in contracts/CHANGELOG.md", async () => {
    const changelog = await readFile(join(COMMITTED, "CHANGELOG.md"), "utf8");
    const problems = checkChangelog(renderContracts().index, changelog);
    expect(problems).toEqual([]);
  });

  test("`contracts export --check` passes on the committed folder", async () => {
    const run = await runHarness(["contracts", "export", "--check", "--out", COMMITTED], {});
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
  }, 30_000);

  test("the export is deterministic, 2020-12, one file per contract plus a valid index", () => {
    const a = renderContracts();
    const b = renderContracts();
    expect([...a.files.entries()]).toEqual([...b.files.entries()]);
    expect(a.files.size).toBe(CONTRACTS.length + 1);
    for (const [file, text] of a.files) {
      expect(text.endsWith("}\n"), file).toBe(true);
      expect(text.includes("\r"), file).toBe(false);
    }
    const index = v.parse(ContractIndex, parseJson(a.files.get(INDEX_FILE) ?? "", INDEX_FILE));
    expect(index.contracts.map((c) => c.name)).toEqual(CONTRACTS.map((c) => c.name));
    for (const c of index.contracts) {
      const schema = parseJson(a.files.get(c.file) ?? "", c.file);
      expect(schema).toMatchObject({ $schema: DIALECT, title: c.name });
    }
  });

  test("the frozen contracts keep what they must: patterns, UUID, enums, strictness, lengths", () => {
    const { files } = renderContracts();
    const schema = parseJson(files.get("claim_response.schema.json") ?? "", "claim_response");
    expect(schema).toMatchObject({
      additionalProperties: false,
      properties: {
        task_id: { format: "uuid", pattern: expect.any(String) },
        org_id: { minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]*$" },
        attempt: { type: "integer", minimum: 1, maximum: 1_000_000 },
        lease_expires_at: {
          format: "date-time",
          maxLength: 40,
          pattern: expect.stringContaining("[Tt ]"),
        },
        payload: { type: "object", $comment: expect.stringContaining("65536 bytes") },
      },
    });
    const synthetic = parseJson(files.get("synthetic_payload.schema.json") ?? "", "synthetic");
    expect(synthetic).toMatchObject({ additionalProperties: false, required: ["alerts"] });
    const alert = parseJson(files.get("alert_line.schema.json") ?? "", "alert_line");
    expect(alert).toMatchObject({
      properties: { severity: { enum: ["info", "low", "medium", "high", "critical"] } },
    });
  });

  describe("it cannot pass vacuously", () => {
    test("an altered schema differs from the committed copy, naming the contract, field and path", async () => {
      const changed = v.strictObject({
        ...ClaimResponse.entries,
        attempt: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(999)),
        region: v.string(),
      });
      const fresh = renderContracts(altered("claim_response", changed));
      const diffs = diffContractFiles(await readContractFiles(COMMITTED), fresh.files);
      const report = formatDifferences(diffs);
      expect(report).toContain("contract claim_response (claim_response.schema.json):");
      expect(report).toContain("field attempt at $.properties.attempt.maximum: 1000000 -> 999");
      expect(report).toContain("field region at $.properties.region: added");
      expect(report).toContain('field region at $.required: added "region" (now required)');
      // The index changes too (fingerprint), and nothing else does.
      expect(new Set(diffs.map((d) => d.contract))).toEqual(new Set(["claim_response", "index"]));
    });

    test("the changelog check catches a changed schema whose version was not bumped, then a bump with no line", async () => {
      const changelog = await readFile(join(COMMITTED, "CHANGELOG.md"), "utf8");
      const current = CONTRACTS.find((c) => c.name === "claim_response")?.version ?? 0;
      const changed = v.strictObject({ ...ClaimResponse.entries, region: v.string() });
      const sameVersion = checkChangelog(
        renderContracts(altered("claim_response", changed)).index,
        changelog,
      );
      expect(sameVersion).toHaveLength(1);
      expect(sameVersion[0]).toContain("claim_response changed");
      expect(sameVersion[0]).toContain(`version is still ${current}`);
      const bumped = checkChangelog(
        renderContracts(altered("claim_response", changed, current + 1)).index,
        changelog,
      );
      expect(bumped).toHaveLength(1);
      expect(bumped[0]).toContain(
        `claim_response v${current + 1} is not in contracts/CHANGELOG.md`,
      );
    });

    test("`contracts export --check` fails on a tampered copy, naming contract and path", async () => {
      const dir = await tempDir();
      try {
        await writeContracts(dir);
        await writeFile(join(dir, "CHANGELOG.md"), await readFile(join(COMMITTED, "CHANGELOG.md")));
        const file = join(dir, "buffer_queue.schema.json");
        const text = await readFile(file, "utf8");
        await writeFile(file, text.replace('"minimum": 1\n', '"minimum": 0\n'));
        const run = await runHarness(["contracts", "export", "--check", "--out", dir], {});
        expect(run.code).toBe(1);
        expect(run.stderr).toContain("contract buffer_queue (buffer_queue.schema.json):");
        expect(run.stderr).toContain(
          "field batch_size_bytes at $.properties.batch_size_bytes.minimum: 0 -> 1",
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 30_000);

    test("a missing, an extra and a reformatted file are each reported", async () => {
      const committed = await readContractFiles(COMMITTED);
      const fresh = new Map(renderContracts().files);
      fresh.delete("task_wakeup.schema.json");
      fresh.set("surprise.schema.json", "{}\n");
      const alertText = fresh.get("alert_line.schema.json") ?? "";
      fresh.set("alert_line.schema.json", JSON.stringify(JSON.parse(alertText)));
      const changes = diffContractFiles(committed, fresh).map((d) => `${d.contract}: ${d.change}`);
      expect(changes).toEqual([
        "alert_line: formatting",
        "surprise: missing file",
        "task_wakeup: extra file",
      ]);
    });
  });

  test("writeContracts removes schema files of contracts that no longer exist, nothing else", async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, "gone.schema.json"), "{}\n");
      await writeFile(join(dir, "notes.txt"), "keep me\n");
      const result = await writeContracts(dir);
      expect(result.removed).toEqual(["gone.schema.json"]);
      expect(await readFile(join(dir, "notes.txt"), "utf8")).toBe("keep me\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
