import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../../src/platform/embedded";
import { closedFolder } from "../../src/platform/pg-binaries";

/**
 * As root the embedded PostgreSQL runs as the `postgres` user. A checkout in
 * a folder closed to other users (what `mktemp -d` makes) must still start
 * it, and a data folder that user cannot reach is refused with its name.
 */

const ROOT = join(import.meta.dir, "..", "..");
const made: string[] = [];
function tempFolder(prefix: string, mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, mode);
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test("closedFolder names the first folder other users cannot enter", () => {
  const open = tempFolder("harness-open-", 0o755);
  const closed = tempFolder("harness-closed-", 0o700);
  expect(closedFolder(join(open, "data"))).toBeUndefined();
  expect(closedFolder(join(closed, "data"))).toBe(closed);
});

describe.skipIf(process.getuid?.() !== 0)("embedded PostgreSQL under root", () => {
  test("a checkout in a closed folder starts it from a staged copy of the executables", async () => {
    const checkout = tempFolder("harness-checkout-", 0o700);
    // TMPDIR of the child: where the staged copy and the data folder go.
    const temp = tempFolder("harness-tmp-", 0o755);
    const linked = Bun.spawnSync(["cp", "-al", join(ROOT, "node_modules"), checkout]);
    if (linked.exitCode !== 0)
      cpSync(join(ROOT, "node_modules"), join(checkout, "node_modules"), {
        recursive: true,
        verbatimSymlinks: true,
      });
    cpSync(join(ROOT, "src"), join(checkout, "src"), { recursive: true });
    writeFileSync(
      join(checkout, "start.ts"),
      `import postgres from "postgres";
import { startEmbeddedPostgres } from "./src/platform/embedded";
const pg = await startEmbeddedPostgres({ dir: process.env.PG_DIR ?? "", password: "p", fast: true });
const sql = postgres(pg.url(), { max: 1, onnotice: () => {} });
const [row] = await sql\`SELECT current_user AS who, 40 + 2 AS answer\`;
await sql.end();
await pg.stop();
process.stdout.write(JSON.stringify(row));
`,
    );
    const child = Bun.spawn([process.execPath, "start.ts"], {
      cwd: checkout,
      env: { ...process.env, TMPDIR: temp, PG_DIR: join(temp, "pg") },
      stdout: "pipe",
      stderr: "pipe",
      timeout: 90_000,
    });
    const [out, err, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
    expect(JSON.parse(out)).toEqual({ who: "postgres", answer: 42 });
    const staged = Array.from(new Bun.Glob("harness-pg-*/bin/initdb").scanSync(temp));
    expect(staged).toHaveLength(1);
  }, 120_000);

  test("a data folder closed to other users is refused at once, naming the folder", async () => {
    const closed = tempFolder("harness-closed-", 0o700);
    const start = startEmbeddedPostgres({ dir: join(closed, "pg"), password: "p" });
    await expect(start).rejects.toThrow(`${closed} is closed to other users`);
  });
});
