import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/**
 * The README's quick start, extracted from the README itself, run as
 * written in a fresh copy of the repository — so the README cannot drift.
 */

const ROOT = join(import.meta.dir, "..", "..");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");

function quickStart(): string[] {
  const block = /<!-- quickstart:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(
    readme,
  );
  if (block?.[1] === undefined)
    throw new Error("README.md has no quick start block between the markers");
  return block[1].split("\n").filter((line) => line.trim() !== "");
}

const copy = mkdtempSync(join(tmpdir(), "harness-readme-"));
chmodSync(copy, 0o755);
afterAll(() => {
  rmSync(copy, { recursive: true, force: true });
});

describe("README quick start", () => {
  test("is two commands: one runs up --demo on the embedded defaults, one runs the tests", () => {
    const [up, tests, ...rest] = quickStart();
    expect(rest).toEqual([]);
    expect(up).toContain("harness up --demo");
    expect(tests).toBe("bun run test");
  });

  test("CI runs exactly the README's test command", () => {
    const ci = readFileSync(join(ROOT, ".ci", "run"), "utf8");
    const [, tests] = quickStart();
    expect(ci).toContain(`\n${tests} 2>&1 | tee`);
  });

  test("the first command works as written in a fresh copy of the repository", async () => {
    const files = Bun.spawnSync(["git", "ls-files", "-co", "--exclude-standard"], { cwd: ROOT })
      .stdout.toString()
      .split("\n")
      .filter((f) => f !== "" && !f.startsWith("bench/"));
    for (const file of files) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      try {
        copyFileSync(join(ROOT, file), join(copy, file));
      } catch {
        // listed but deleted in the working tree
      }
    }
    const [up] = quickStart();
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NO_COLOR: "1",
    };
    const proc = Bun.spawn(["bash", "-c", up ?? "false"], {
      cwd: copy,
      env,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    const [code, out, err] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    expect({ code, err: code === 0 ? "" : err.slice(-3000) }).toEqual({ code: 0, err: "" });
    expect(out).toContain(
      "summary: 20 succeeded, 0 failed of 20 tasks; 200 rows ingested (expected 200)",
    );
  }, 300_000);
});
