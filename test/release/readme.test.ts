import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";

/**
 * The README's quick start, extracted from the README itself, run as
 * written in a fresh copy of the repository on a PATH without Bun — so the
 * README cannot drift, and its first command needs no global install.
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
const noBun = mkdtempSync(join(tmpdir(), "harness-nobun-"));
afterAll(() => {
  rmSync(copy, { recursive: true, force: true });
  rmSync(noBun, { recursive: true, force: true });
});

/** One folder of links to every program on PATH but bun and bunx: a machine with Node and npm only. */
function pathWithoutBun(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "" || !existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (name === "bun" || name === "bunx" || existsSync(join(noBun, name))) continue;
      symlinkSync(join(dir, name), join(noBun, name));
    }
  }
  return noBun;
}

async function runQuickStart(command: string) {
  const env: Record<string, string | undefined> = {
    PATH: pathWithoutBun(),
    HOME: process.env.HOME,
    NO_COLOR: "1",
  };
  const proc = Bun.spawn(["bash", "-c", command], {
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
  return { code, out, err };
}

describe("README quick start", () => {
  test("is two commands: one runs up --demo on the embedded defaults, one runs the tests; neither installs globally", () => {
    const [up, tests, ...rest] = quickStart();
    expect(rest).toEqual([]);
    expect(up).toContain("harness up --demo");
    expect(tests).toMatch(/ run test$/);
    for (const command of [up, tests]) {
      expect(command).not.toMatch(/\bsudo\b|\s-g\b|--global|--location[= ]global/);
    }
  });

  test("CI runs exactly the README's test command", () => {
    const ci = readFileSync(join(ROOT, ".ci", "run"), "utf8");
    const [, tests] = quickStart();
    expect(ci).toContain(`\n${tests} 2>&1 | tee`);
  });

  test("the first command works as written in a fresh copy with no Bun on PATH, and a second run installs nothing", async () => {
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
    const first = await runQuickStart(up ?? "false");
    expect({ code: first.code, err: first.code === 0 ? "" : first.err.slice(-3000) }).toEqual({
      code: 0,
      err: "",
    });
    expect(first.out).toContain(
      "summary: 20 succeeded, 0 failed of 20 tasks; 200 rows ingested (expected 200)",
    );
    const second = await runQuickStart(up ?? "false");
    expect(second.code, second.err.slice(-3000)).toBe(0);
    // bun install --frozen-lockfile found every package in place.
    expect(second.out + second.err).toContain("(no changes)");
    expect(second.out).toContain("now holds 40 succeeded task(s) and 400 alert row(s)");
  }, 400_000);
});
