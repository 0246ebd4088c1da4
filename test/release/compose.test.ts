import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { freshDatabase, type TestDatabase } from "../support/db";
import { removeUsers } from "../support/users";

/**
 * compose.yaml cannot be run here (no Docker engine), so its structure is
 * checked: every reference resolves, every role runs a real subcommand, each
 * role holds only its own credentials (README "Security model"), no secret
 * has a usable default — and the credentials step's script is run for real.
 */

const ROOT = join(import.meta.dir, "..", "..");
const Service = v.looseObject({
  image: v.string(),
  entrypoint: v.optional(v.array(v.string())),
  command: v.optional(v.union([v.string(), v.array(v.string())])),
  environment: v.optional(v.record(v.string(), v.string())),
  depends_on: v.optional(
    v.record(
      v.string(),
      v.object({
        condition: v.picklist([
          "service_started",
          "service_healthy",
          "service_completed_successfully",
        ]),
      }),
    ),
  ),
  healthcheck: v.optional(v.object({ test: v.array(v.string()) }, "healthcheck")),
  restart: v.optional(v.picklist(["no", "always", "on-failure", "unless-stopped"])),
  volumes: v.optional(v.array(v.string())),
  configs: v.optional(v.array(v.object({ source: v.string(), target: v.string() }))),
});
const Compose = v.looseObject({
  services: v.record(v.string(), Service),
  volumes: v.optional(v.record(v.string(), v.nullable(v.object({})))),
  configs: v.optional(v.record(v.string(), v.object({ content: v.string() }))),
});

const text = readFileSync(join(ROOT, "compose.yaml"), "utf8");
const compose = v.parse(Compose, Bun.YAML.parse(text));
const services = compose.services;
const ROLES = ["dispatcher", "worker", "sink"] as const;
const SECRETS = ["POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "INTERNAL_AUTH_TOKEN"];

function svc(name: string) {
  const s = services[name];
  if (s === undefined) throw new Error(`compose.yaml has no service ${name}`);
  return s;
}

const commandOf = (name: string) => {
  const c = svc(name).command;
  return Array.isArray(c) ? c.join(" ") : (c ?? "");
};

/** A `${VAR…}` reference as compose writes it: the variable and what follows its name. */
const references = [...text.matchAll(/\$\{([A-Z_]+)([^}]*)\}/g)].map((m) => ({
  name: m[1] ?? "",
  rest: m[2] ?? "",
}));

describe("compose.yaml", () => {
  test("has PostgreSQL, MinIO, migrate, the credentials steps and the three roles", () => {
    for (const name of ["postgres", "minio", "migrate", "credentials", "minio-init", ...ROLES]) {
      expect(services[name]).toBeDefined();
    }
  });

  test("every depends_on, volume and config names something defined", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) {
        expect({ service: name, dependsOn: dep, defined: dep in services }).toEqual({
          service: name,
          dependsOn: dep,
          defined: true,
        });
      }
      for (const vol of s.volumes ?? []) {
        const source = vol.split(":")[0] ?? "";
        if (source.startsWith(".") || source.startsWith("/")) continue;
        expect(Object.keys(compose.volumes ?? {})).toContain(source);
      }
      for (const c of s.configs ?? [])
        expect(Object.keys(compose.configs ?? {})).toContain(c.source);
    }
  });

  test("state and data are separate databases", () => {
    const owner = svc("migrate").environment ?? {};
    const url = (s: string | undefined) => new URL((s ?? "").replace(/\$\{[^}]*\}/, "secret"));
    const stateDb = url(owner.STATE_DATABASE_URL).pathname.slice(1);
    const dataDb = url(owner.DATA_DATABASE_URL).pathname.slice(1);
    expect(stateDb).not.toBe(dataDb);
    expect(compose.configs?.["create-data-db"]?.content).toContain(`CREATE DATABASE ${dataDb}`);
    expect(stateDb).toBe(svc("postgres").environment?.POSTGRES_DB ?? "");
  });

  test("no secret has a usable default: each is required, or generated", () => {
    expect(text).not.toContain("change-me");
    for (const r of references.filter((r) => SECRETS.includes(r.name)))
      expect({ name: r.name, required: r.rest.startsWith(":?") }).toEqual({
        name: r.name,
        required: true,
      });
    // Unset, the dispatcher generates its key into the state database.
    expect(references.filter((r) => r.name === "CAPABILITY_SIGNING_KEY")).toEqual([
      { name: "CAPABILITY_SIGNING_KEY", rest: ":-" },
    ]);
    // Store keys are made by the credentials step, never written here.
    const withKeys = Object.entries(services).filter(([, s]) =>
      Object.keys(s.environment ?? {}).some((k) => k.startsWith("S3_") && k.endsWith("KEY")),
    );
    expect(withKeys.map(([name]) => name)).toEqual([]);
  });

  test("each role holds only its own secrets: its database user and store keys from its own volume", () => {
    const allowed: Record<(typeof ROLES)[number], string[]> = {
      dispatcher: ["INTERNAL_AUTH_TOKEN", "CAPABILITY_SIGNING_KEY"],
      worker: ["INTERNAL_AUTH_TOKEN"],
      sink: [],
    };
    const secretKeys = [
      "DATABASE_URL",
      "STATE_DATABASE_URL",
      "DATA_DATABASE_URL",
      "INTERNAL_AUTH_TOKEN",
      "CAPABILITY_SIGNING_KEY",
      "S3_ACCESS_KEY_ID",
      "S3_SECRET_ACCESS_KEY",
      "MINIO_ROOT_PASSWORD",
    ];
    for (const role of ROLES) {
      const s = svc(role);
      const held = Object.keys(s.environment ?? {}).filter((k) => secretKeys.includes(k));
      expect({ role, held: held.sort() }).toEqual({ role, held: [...allowed[role]].sort() });
      const volumes = s.volumes ?? [];
      expect({ role, project: volumes.filter((v) => v.startsWith(".:")) }).toEqual({
        role,
        project: [],
      });
      expect({ role, writable: volumes.filter((v) => !v.endsWith(":ro")) }).toEqual({
        role,
        writable: [],
      });
      const credentials = volumes.filter((v) => v.includes("-credentials:"));
      expect({ role, credentials }).toEqual({
        role,
        credentials: [`${role}-credentials:/run/harness:ro`],
      });
      const command = commandOf(role);
      expect(command).toContain(". /run/harness/db.env");
      expect(command).toContain(`bun src/cli.ts ${role}`);
      expect(command.includes("s3.env")).toBe(role !== "dispatcher");
    }
    for (const [name, s] of Object.entries(services)) {
      const owner = "STATE_DATABASE_URL" in (s.environment ?? {});
      expect({ name, owner }).toEqual({
        name,
        owner: name === "migrate" || name === "credentials",
      });
    }
  });

  test("MinIO: the worker's key may only put and the sink's only get, under the store's prefix", () => {
    const store = new URL(svc("worker").environment?.OBJECT_STORE_URL ?? "");
    const resource = `arn:aws:s3:::${store.host}${store.pathname}/*`;
    const policy = (name: string) => JSON.parse(compose.configs?.[name]?.content ?? "{}");
    expect(policy("minio-worker-policy").Statement).toEqual([
      { Effect: "Allow", Action: ["s3:PutObject"], Resource: [resource] },
    ]);
    expect(policy("minio-sink-policy").Statement).toEqual([
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: [resource] },
    ]);
    const init = commandOf("minio-init");
    expect(init).toContain(`mb --ignore-existing local/${store.host}`);
    expect(init).toContain("mc admin policy attach local harness-$$role");
    expect(svc("minio-init").volumes).toEqual([
      "worker-credentials:/in/worker:ro",
      "sink-credentials:/in/sink:ro",
    ]);
  });

  test("health checks, restart policies and start order", () => {
    for (const name of ["postgres", "minio", "dispatcher"])
      expect(svc(name).healthcheck).toBeDefined();
    for (const name of [...ROLES, "postgres", "minio"]) {
      expect(svc(name).restart).toBe("unless-stopped");
    }
    for (const name of ["migrate", "credentials", "minio-init"])
      expect(svc(name).restart).toBe("no");
    expect(svc("migrate").depends_on?.postgres?.condition).toBe("service_healthy");
    expect(svc("credentials").depends_on?.migrate?.condition).toBe(
      "service_completed_successfully",
    );
    for (const role of ROLES) {
      expect(svc(role).depends_on?.credentials?.condition).toBe("service_completed_successfully");
      expect(svc(role).depends_on?.["minio-init"]?.condition).toBe(
        "service_completed_successfully",
      );
    }
  });
});

describe("compose.yaml's credentials step, run for real", () => {
  const out = mkdtempSync(join(tmpdir(), "harness-compose-"));
  const tag = `c${process.pid}_${Math.random().toString(36).slice(2, 6)}_`;
  let state: TestDatabase | undefined;
  let data: TestDatabase | undefined;

  afterAll(async () => {
    await removeUsers(ROLES.map((role) => `${tag}compose_${role}`));
    await state?.drop();
    await data?.drop();
    rmSync(out, { recursive: true, force: true });
  });

  /** The step's script as the container's shell sees it: `$$` is compose's escape of `$`. */
  function script(): string {
    const s = svc("credentials");
    const body = (Array.isArray(s.command) ? s.command[0] : s.command) ?? "";
    return body
      .replaceAll("$$", "$")
      .replaceAll("/out/", `${out}/`)
      .replaceAll("compose_", `${tag}compose_`);
  }

  function run(env: Record<string, string>): { code: number; stderr: string } {
    const r = Bun.spawnSync(["sh", "-c", script()], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: "1", ...env },
    });
    return { code: r.exitCode, stderr: r.stderr.toString() };
  }

  test("makes each role's files once; sourced, they hold that role's user and keys only", async () => {
    [state, data] = await Promise.all([freshDatabase(), freshDatabase()]);
    for (const role of ROLES) mkdirSync(join(out, role));
    const owner = { STATE_DATABASE_URL: state.url, DATA_DATABASE_URL: data.url };
    expect(run(owner)).toEqual({ code: 0, stderr: "" });
    const read = (f: string) => readFileSync(join(out, f), "utf8");
    const first = [
      "dispatcher/db.env",
      "worker/db.env",
      "worker/s3.env",
      "sink/db.env",
      "sink/s3.env",
    ].map(read);
    expect(run(owner)).toEqual({ code: 0, stderr: "" });
    expect(
      ["dispatcher/db.env", "worker/db.env", "worker/s3.env", "sink/db.env", "sink/s3.env"].map(
        read,
      ),
    ).toEqual(first);
    const sourced = (role: string) => {
      const files = role === "dispatcher" ? ". ./db.env" : ". ./db.env && . ./s3.env";
      const r = Bun.spawnSync(["sh", "-c", `set -a && ${files} && env`], {
        cwd: join(out, role),
        env: { PATH: process.env.PATH },
      });
      return Object.fromEntries(
        r.stdout
          .toString()
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])
          .filter(([k]) => k !== "PATH" && k !== "PWD" && k !== "SHLVL" && k !== "_"),
      );
    };
    const user = (url: string | undefined) => new URL(url ?? "").username;
    const d = sourced("dispatcher");
    const w = sourced("worker");
    const s = sourced("sink");
    expect(Object.keys(d).sort()).toEqual(["STATE_DATABASE_URL"]);
    expect(Object.keys(w).sort()).toEqual([
      "S3_ACCESS_KEY_ID",
      "S3_SECRET_ACCESS_KEY",
      "STATE_DATABASE_URL",
    ]);
    expect(Object.keys(s).sort()).toEqual([
      "DATA_DATABASE_URL",
      "S3_ACCESS_KEY_ID",
      "S3_SECRET_ACCESS_KEY",
      "STATE_DATABASE_URL",
    ]);
    expect([
      user(d.STATE_DATABASE_URL),
      user(w.STATE_DATABASE_URL),
      user(s.DATA_DATABASE_URL),
    ]).toEqual([`${tag}compose_dispatcher`, `${tag}compose_worker`, `${tag}compose_sink`]);
    expect(w.S3_ACCESS_KEY_ID).toBe("harness-worker");
    expect(w.S3_SECRET_ACCESS_KEY).not.toBe(s.S3_SECRET_ACCESS_KEY);
    expect((w.S3_SECRET_ACCESS_KEY ?? "").length).toBeGreaterThanOrEqual(32);
  }, 60_000);
});
