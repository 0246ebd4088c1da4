import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { upUserName } from "../../src/up/credentials";
import { EXCESS_LOG } from "../../src/users/excess";
import { useFreshDatabase } from "../support/db";
import { spawnHarness } from "../support/processes";
import { removeUsers } from "../support/users";
import { waitFor } from "../support/wait";

/**
 * What `harness up` really hands its children, read from each running
 * process's /proc/<pid>/environ: every role its own database user and only
 * the secrets it needs, even when up's own environment holds more.
 */

const db = useFreshDatabase();
const dir = mkdtempSync(join(tmpdir(), "harness-up-env-"));
const objects = mkdtempSync(join(tmpdir(), "harness-up-objects-"));

afterAll(async () => {
  const owner = { state: db().url, data: db().url };
  await removeUsers(
    (["dispatcher", "worker", "sink", "ui"] as const).map((r) => upUserName(owner, r)),
  );
  rmSync(dir, { recursive: true, force: true });
  rmSync(objects, { recursive: true, force: true });
});

function childrenOf(pid: number): Array<{ pid: number; args: string }> {
  const ps = Bun.spawnSync(["ps", "-o", "pid=,ppid=,args=", "-e"]).stdout.toString();
  return ps
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === pid)
    .map((m) => ({ pid: Number(m[1]), args: m[3] ?? "" }));
}

function environOf(pid: number): Record<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
  return Object.fromEntries(
    raw
      .split("\0")
      .filter((kv) => kv.includes("="))
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

const user = (url: string | undefined) => (url === undefined ? undefined : new URL(url).username);

describe("harness up", () => {
  test("gives each role its own user and only its own secrets, whatever up itself holds; drops the users as it stops", async () => {
    const up = spawnHarness("up", ["up", "--workers", "1", "--dir", dir], {
      DATABASE_URL: db().url,
      OBJECT_STORE_URL: pathToFileURL(objects).href,
      // Secrets up holds and must not pass on to roles that do not need them.
      UI_AUTH_TOKEN: "a-dashboard-token-0123456789",
      CAPABILITY_KEY_FILE: join(dir, "never-used.jwk"),
    });
    try {
      await waitFor(() => up.stdout().includes("press Ctrl-C to stop"), {
        what: "the platform to be up",
        timeoutMs: 60_000,
      });
      const roles = Object.fromEntries(
        childrenOf(up.proc.pid).map((c) => [
          /\s(dispatcher|worker|sink|ui)(\s|$)/.exec(c.args)?.[1],
          environOf(c.pid),
        ]),
      );
      const d = roles.dispatcher ?? {};
      const w = roles.worker ?? {};
      const s = roles.sink ?? {};
      const u = roles.ui ?? {};
      const held = (env: Record<string, string>) =>
        [
          "DATABASE_URL",
          "STATE_DATABASE_URL",
          "DATA_DATABASE_URL",
          "INTERNAL_AUTH_TOKEN",
          "CAPABILITY_SIGNING_KEY",
          "CAPABILITY_KEY_FILE",
          "UI_AUTH_TOKEN",
        ].filter((k) => k in env);
      expect({
        dispatcher: held(d),
        worker: held(w),
        sink: held(s),
        ui: held(u),
      }).toEqual({
        dispatcher: ["STATE_DATABASE_URL", "INTERNAL_AUTH_TOKEN", "CAPABILITY_SIGNING_KEY"],
        worker: ["STATE_DATABASE_URL", "INTERNAL_AUTH_TOKEN"],
        sink: ["STATE_DATABASE_URL", "DATA_DATABASE_URL"],
        ui: ["STATE_DATABASE_URL", "DATA_DATABASE_URL", "UI_AUTH_TOKEN"],
      });
      const owner = { state: db().url, data: db().url };
      expect({
        dispatcher: user(d.STATE_DATABASE_URL),
        worker: user(w.STATE_DATABASE_URL),
        sinkState: user(s.STATE_DATABASE_URL),
        sinkData: user(s.DATA_DATABASE_URL),
        ui: user(u.STATE_DATABASE_URL),
      }).toEqual({
        dispatcher: upUserName(owner, "dispatcher"),
        worker: upUserName(owner, "worker"),
        sinkState: upUserName(owner, "sink"),
        sinkData: upUserName(owner, "sink"),
        ui: upUserName(owner, "ui"),
      });
      expect(w.DISPATCHER_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      expect(await up.stop("SIGINT")).toBe(0);
    }
    const names = (["dispatcher", "worker", "sink", "ui"] as const).map((r) =>
      upUserName({ state: db().url, data: db().url }, r),
    );
    const left = await db().sql`SELECT rolname FROM pg_roles WHERE rolname = ANY(${names})`;
    expect(left.map((r) => r.rolname)).toEqual([]);
    const files = readdirSync(join(dir, "logs"));
    expect(files).toEqual(
      expect.arrayContaining(["dispatcher.log", "worker-1.log", "sink.log", "ui.log"]),
    );
    const warned = files.filter((f) =>
      readFileSync(join(dir, "logs", f), "utf8").includes(EXCESS_LOG.warning),
    );
    expect(warned).toEqual([]);
  }, 90_000);
});
