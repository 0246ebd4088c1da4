import { afterAll, describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { scramVerifier } from "../../src/db/scram";
import { freshDatabase, type TestDatabase, useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { removeUsers } from "../support/users";

/**
 * `harness user add/remove` as a script runs them, with the owner's URLs
 * (here the test server's superuser; a non-superuser owner and real
 * password checks are in ./owner.test.ts on a server of their own).
 */

const state = useFreshDatabase();
let data: TestDatabase | undefined;
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 6)}`;
const made = new Set<string>();

const owner = () => ({ STATE_DATABASE_URL: state().url, DATA_DATABASE_URL: dataUrl() });
function dataUrl(): string {
  if (data === undefined) throw new Error("no data database yet");
  return data.url;
}

afterAll(async () => {
  await removeUsers(made);
  await data?.drop();
});

async function add(role: string, name: string, ...flags: string[]) {
  if (data === undefined) data = await freshDatabase();
  made.add(name);
  return runHarness(["user", "add", "--role", role, ...flags, name], owner());
}

function lines(stdout: string): Array<[string, string]> {
  return stdout
    .trimEnd()
    .split("\n")
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

async function whoAmI(url: string): Promise<{ user: string; groups: string[] }> {
  const sql = connect(url, { name: "test", max: 1 });
  try {
    const [row] = await sql`
      SELECT current_user::text AS user, current_database()::text AS db,
             array(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = current_user ORDER BY 1) AS groups`;
    return { user: String(row?.user), groups: [...(row?.groups ?? [])].map(String) };
  } finally {
    await sql.end();
  }
}

async function storedVerifier(name: string): Promise<string | undefined> {
  const [row] = await state().sql`SELECT rolpassword FROM pg_authid WHERE rolname = ${name}`;
  return row === undefined ? undefined : String(row.rolpassword);
}

/** True when `password` is the one the stored SCRAM verifier was made from. */
async function passwordMatches(name: string, password: string): Promise<boolean> {
  const stored = (await storedVerifier(name)) ?? "";
  const salt = /^SCRAM-SHA-256\$\d+:([^$]+)\$/.exec(stored)?.[1] ?? "";
  return scramVerifier(password, Buffer.from(salt, "base64")) === stored;
}

describe("harness user add", () => {
  test("prints the URLs each role needs, one KEY=URL line each, and they connect as the user", async () => {
    const wanted = {
      dispatcher: ["STATE_DATABASE_URL"],
      worker: ["STATE_DATABASE_URL"],
      sink: ["STATE_DATABASE_URL", "DATA_DATABASE_URL"],
      reader: ["STATE_DATABASE_URL", "DATA_DATABASE_URL"],
    };
    for (const [role, keys] of Object.entries(wanted)) {
      const name = `${role}_${suffix}`;
      const r = await add(role, name);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const printed = lines(r.stdout);
      expect(printed.map(([k]) => k)).toEqual(keys);
      for (const [key, url] of printed) {
        expect(new URL(url).pathname).toBe(
          `/${key === "DATA_DATABASE_URL" ? data?.name : state().name}`,
        );
        expect(await whoAmI(url)).toEqual({ user: name, groups: [`harness_${role}`] });
        expect(await passwordMatches(name, decodeURIComponent(new URL(url).password))).toBe(true);
      }
    }
  });

  test("a second add of a name says so and changes nothing; --rotate gives a new password", async () => {
    const name = `again_${suffix}`;
    const first = await add("worker", name);
    expect(first.code).toBe(0);
    const before = await storedVerifier(name);
    const second = await add("worker", name);
    expect({ code: second.code, stdout: second.stdout }).toEqual({ code: 1, stdout: "" });
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toContain(`user ${name} already exists`);
    expect(await storedVerifier(name)).toBe(before);
    const rotated = await add("worker", name, "--rotate");
    expect(rotated.code).toBe(0);
    const password = decodeURIComponent(new URL(lines(rotated.stdout)[0]?.[1] ?? "").password);
    expect(await storedVerifier(name)).not.toBe(before);
    expect(await passwordMatches(name, password)).toBe(true);
    const otherRole = await add("sink", name, "--rotate");
    expect(otherRole.code).toBe(1);
    expect(otherRole.stderr).toContain("not harness_sink");
  });

  test("never takes over a role that is not a harness user", async () => {
    const r = await runHarness(
      ["user", "add", "--role", "worker", "--rotate", "postgres"],
      owner(),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not a harness user");
    const [pg] = await state().sql`SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'`;
    expect(pg?.rolsuper).toBe(true);
  });

  test("bad names, roles and flags: one line, exit 2", async () => {
    const cases = [
      ["--role", "worker", "W1"],
      ["--role", "worker", "1abc"],
      ["--role", "worker", "a-b"],
      ["--role", "worker", "pg_sneaky"],
      ["--role", "worker", "harness_dispatcher"],
      ["--role", "worker", "x".repeat(64)],
      ["--role", "worker"],
      ["--role", "worker", "a", "b"],
      ["--role", "admin", "a"],
      ["a"],
      ["--role", "worker", "--redrive", "a"],
    ];
    for (const args of cases) {
      const r = await runHarness(["user", "add", ...args], owner());
      expect({ args, code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({
        args,
        code: 2,
        lines: 1,
      });
    }
  });
});

describe("harness user remove", () => {
  test("drops the user and ends its sessions; a second remove says there is none", async () => {
    const name = `gone_${suffix}`;
    const r = await add("sink", name);
    const url = lines(r.stdout)[0]?.[1] ?? "";
    const session = connect(url, { name: "test", max: 1 });
    await session`SELECT 1`;
    const removed = await runHarness(["user", "remove", name], owner());
    expect({ code: removed.code, stdout: removed.stdout, stderr: removed.stderr }).toEqual({
      code: 0,
      stdout: `removed user ${name}\n`,
      stderr: "",
    });
    made.delete(name);
    expect(await storedVerifier(name)).toBeUndefined();
    // The superuser owner ended its session; a reconnect is refused: the role is gone.
    await expect(session`SELECT 1`).rejects.toThrow();
    await session.end({ timeout: 1 });
    const again = await runHarness(["user", "remove", name], owner());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no user ${name}`);
  });

  test("never drops a role that is not a harness user", async () => {
    const r = await runHarness(["user", "remove", "postgres"], owner());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not a harness user");
  });
});
