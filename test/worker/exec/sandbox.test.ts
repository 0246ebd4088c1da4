import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecSetupError, prepareExec } from "../../../src/worker/exec/setup";
import { memoryLogger, program, removeTempDirs, run, settings, tempStore } from "./helpers";

afterAll(removeTempDirs);

/**
 * What a task program gets, and does not: its environment, its limits, its
 * user, its network. The programs report what they see as alert lines, and
 * the tests read those from the store.
 */

const ALERT = { source: "probe", severity: "info", occurred_at: "2024-01-01T00:00:00Z" };

/** `bun -e` with a script that prints one alert line whose attributes are `expr`. */
function bunProgram(setup: string, expr: string): string[] {
  const line = `JSON.stringify({ ...${JSON.stringify(ALERT)}, title: "probe", attributes: ${expr} })`;
  return [process.execPath, "-e", `${setup}\nconsole.log(${line});`];
}

async function attributesOf(
  command: string[],
  over: Parameters<typeof run>[1]["settings"] = {},
  env?: Record<string, string | undefined>,
) {
  const s = await tempStore();
  const { outcome } = await run(command, { store: s, settings: over, ...(env ? { env } : {}) });
  expect(outcome.kind).toBe("succeeded");
  const [file] = s.files();
  if (file === undefined) throw new Error(`no batch: ${JSON.stringify(outcome)}`);
  const line = JSON.parse(readFileSync(join(s.dir, file), "utf8").trim());
  return { attributes: line.attributes, text: readFileSync(join(s.dir, file), "utf8") };
}

const SECRETS = {
  DATABASE_URL: "postgres://harness:db-secret-1234@127.0.0.1:5432/x",
  STATE_DATABASE_URL: "postgres://harness:db-secret-1234@127.0.0.1:5432/state",
  INTERNAL_AUTH_TOKEN: "internal-token-secret-5678",
  S3_ACCESS_KEY_ID: "s3-key-id-secret",
  S3_SECRET_ACCESS_KEY: "s3-secret-key-9999",
  CAPABILITY_SIGNING_KEY: '{"kty":"OKP","d":"signing-secret"}',
  PGPASSWORD: "pg-secret-0000",
};

describe("the environment of a task program", () => {
  test("holds the task's identity, PATH, HOME and --exec-env variables only: no secret", async () => {
    // The worker's own environment is full of secrets; and one process may look through /proc for them.
    const env = { ...process.env, ...SECRETS, REPORT_TO: "team-a" };
    const marker = SECRETS.INTERNAL_AUTH_TOKEN;
    const setup = `const fs = require("node:fs");
const hits = [];
for (const d of fs.readdirSync("/proc")) {
  if (!/^\\d+$/.test(d)) continue;
  try { if (fs.readFileSync("/proc/" + d + "/environ", "latin1").includes(${JSON.stringify(marker)})) hits.push(d); } catch {}
}`;
    const { attributes, text } = await attributesOf(
      bunProgram(setup, "{ env: process.env, environ_hits: hits }"),
      { passEnv: ["REPORT_TO"] },
      env,
    );
    expect(Object.keys(attributes.env).sort()).toEqual(
      ["HARNESS_ATTEMPT", "HARNESS_ORG_ID", "HARNESS_TASK_ID", "HOME", "PATH", "REPORT_TO"].sort(),
    );
    expect(attributes.env).toMatchObject({
      HARNESS_TASK_ID: "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f",
      HARNESS_ORG_ID: "acme",
      HARNESS_ATTEMPT: "1",
      REPORT_TO: "team-a",
    });
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    // In its PID namespace, the worker's /proc/<pid>/environ is out of sight.
    expect(attributes.environ_hits).toEqual([]);
  });

  test("--exec-env never passes worker configuration, and names a variable that is not set", () => {
    const log = memoryLogger();
    for (const name of [
      "INTERNAL_AUTH_TOKEN",
      "DATABASE_URL",
      "S3_SECRET_ACCESS_KEY",
      "PGPASSWORD",
      "HOME",
    ]) {
      expect(() =>
        prepareExec(settings(["true"], { passEnv: [name] }), { ...process.env, ...SECRETS }, log),
      ).toThrow(`--exec-env ${name}`);
    }
    expect(() =>
      prepareExec(settings(["true"], { passEnv: ["NOT_SET_ANYWHERE"] }), {}, log),
    ).toThrow("NOT_SET_ANYWHERE is not set");
  });
});

describe("limits", () => {
  const LIMITS = program(
    "limits",
    `awk '/Max (cpu time|open files|address space)/ { gsub(/  +/, " "); printf "{\\"source\\":\\"limits\\",\\"severity\\":\\"info\\",\\"title\\":\\"%s\\",\\"occurred_at\\":\\"2024-01-01T00:00:00Z\\"}\\n", $0 }' /proc/self/limits`,
  );

  test("open files, address space and CPU time are the program's rlimits", async () => {
    const s = await tempStore();
    const { outcome } = await run([LIMITS], {
      store: s,
      settings: { openFiles: 77, memoryBytes: 512 * 1024 * 1024, cpuSeconds: 30 },
    });
    expect(outcome.kind).toBe("succeeded");
    const titles = s
      .files()
      .flatMap((f) => readFileSync(join(s.dir, f), "utf8").trim().split("\n"))
      .map((l) => String(JSON.parse(l).title).trim());
    expect(titles).toContain("Max cpu time 30 31 seconds");
    expect(titles).toContain("Max open files 77 77 files");
    expect(titles).toContain("Max address space 536870912 536870912 bytes");
  });

  test("a program over --exec-cpu-seconds is killed by SIGXCPU and its attempt fails", async () => {
    const s = await tempStore();
    const { outcome } = await run([program("spins", "while :; do :; done")], {
      store: s,
      settings: { cpuSeconds: 1 },
    });
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    if (outcome.kind === "failed") expect(outcome.reason).toContain("SIGXCPU");
  }, 30_000);

  test("a program over --exec-memory cannot allocate past it", async () => {
    const s = await tempStore();
    const grow = program(
      "grows",
      `awk 'BEGIN { s = "x"; while (length(s) < 256 * 1024 * 1024) s = s s; print length(s) }' >/dev/null || exit 42`,
    );
    const { outcome } = await run([grow], {
      store: s,
      settings: { memoryBytes: 64 * 1024 * 1024 },
    });
    expect(outcome).toMatchObject({ kind: "failed", retryable: true });
    if (outcome.kind === "failed") expect(outcome.reason).toContain("code 42");
  });
});

describe("--exec-user", () => {
  test("as root, the program runs as that user, in a HOME it owns", async () => {
    const who = program(
      "whoami",
      `printf '{"source":"id","severity":"info","title":"%s","occurred_at":"2024-01-01T00:00:00Z"}\\n' "$(id -un):$(stat -c %U "$HOME")"`,
    );
    const s = await tempStore();
    const { outcome } = await run([who], { store: s, settings: { user: "nobody" } });
    expect(outcome.kind).toBe("succeeded");
    const [file] = s.files();
    expect(JSON.parse(readFileSync(join(s.dir, file ?? ""), "utf8")).title).toBe("nobody:nobody");
  });

  test("an unknown user is refused with one line", () => {
    expect(() =>
      prepareExec(settings(["true"], { user: "no-such-user-here" }), process.env, memoryLogger()),
    ).toThrow(new ExecSetupError("--exec-user no-such-user-here: no such user"));
  });

  test("a worker that is not root is refused the flag, and still gets the namespace fence", async () => {
    // Bundled into a world-readable folder: the checkout itself may be one
    // `nobody` cannot read (a clone under /root, or in a 0700 mktemp folder).
    const dir = mkdtempSync(join(tmpdir(), "harness-exec-user-"));
    chmodSync(dir, 0o755);
    const entry = join(dir, "check.ts");
    writeFileSync(
      entry,
      `import { prepareExec } from ${JSON.stringify(join(import.meta.dir, "../../../src/worker/exec/setup"))};
import { createLogger } from ${JSON.stringify(join(import.meta.dir, "../../../src/log"))};

const s = (user) => ({ command: ["true"], taskTimeoutMs: 1000, graceMs: 100, passEnv: [], memoryBytes: undefined, cpuSeconds: undefined, openFiles: 64, user, noNetwork: true });
try { prepareExec(s("root"), process.env, createLogger("w")); } catch (e) { console.log(e.message); }
console.log(prepareExec(s(undefined), process.env, createLogger("w")).launch.fence);`,
    );
    try {
      const built = await Bun.build({ entrypoints: [entry], outdir: dir, target: "bun" });
      expect(built.success).toBe(true);
      for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
      const p = Bun.spawnSync(
        [
          "setpriv",
          "--reuid=nobody",
          "--regid=nogroup",
          "--clear-groups",
          "--",
          process.execPath,
          join(dir, "check.js"),
        ],
        { env: { PATH: process.env.PATH, HOME: "/tmp" }, stdout: "pipe", stderr: "pipe" },
      );
      expect(p.stdout.toString().trim().split("\n")).toEqual([
        "--exec-user needs the worker to run as root (it runs as uid 65534)",
        "namespace",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("--exec-no-network", () => {
  const probe = bunProgram(
    `let r = "unreachable";
try { const s = await Bun.connect({ hostname: "127.0.0.1", port: 5432, socket: { data() {} } }); s.end(); r = "connected"; } catch {}`,
    "{ postgres: r }",
  );

  test("the program cannot reach even 127.0.0.1:5432", async () => {
    const { attributes } = await attributesOf(probe, { noNetwork: true });
    expect(attributes).toEqual({ postgres: "unreachable" });
  });

  test("without the flag, the same program reaches it", async () => {
    const { attributes } = await attributesOf(probe);
    expect(attributes).toEqual({ postgres: "connected" });
  });
});
