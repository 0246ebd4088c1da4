import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";

/**
 * compose.yaml cannot be run here (no Docker engine), so its structure is
 * checked: every reference resolves, every role runs a real subcommand with
 * the design's variables, and the stateful services have health checks.
 */

const ROOT = join(import.meta.dir, "..", "..");
const Service = v.looseObject({
  image: v.string(),
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

const compose = v.parse(Compose, Bun.YAML.parse(readFileSync(join(ROOT, "compose.yaml"), "utf8")));
const services = compose.services;

function svc(name: string) {
  const s = services[name];
  if (s === undefined) throw new Error(`compose.yaml has no service ${name}`);
  return s;
}

describe("compose.yaml", () => {
  test("has PostgreSQL, MinIO with its bucket, migrate and the three roles", () => {
    for (const name of [
      "postgres",
      "minio",
      "minio-bucket",
      "migrate",
      "dispatcher",
      "worker",
      "sink",
    ]) {
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
    const env = svc("dispatcher").environment ?? {};
    expect(env.STATE_DATABASE_URL).toBeDefined();
    expect(env.DATA_DATABASE_URL).toBeDefined();
    expect(env.STATE_DATABASE_URL).not.toBe(env.DATA_DATABASE_URL);
    const dataDb = new URL(env.DATA_DATABASE_URL ?? "").pathname.slice(1);
    expect(compose.configs?.["create-data-db"]?.content).toContain(`CREATE DATABASE ${dataDb}`);
    expect(new URL(env.STATE_DATABASE_URL ?? "").pathname.slice(1)).toBe(
      svc("postgres").environment?.POSTGRES_DB ?? "",
    );
  });

  test("the roles run real harness subcommands with the design's variables", () => {
    const expected = {
      migrate: "migrate",
      dispatcher: "dispatcher",
      worker: "worker",
      sink: "sink",
    };
    for (const [name, sub] of Object.entries(expected)) {
      const s = svc(name);
      const command = Array.isArray(s.command) ? s.command.join(" ") : (s.command ?? "");
      expect(command).toContain(`src/cli.ts ${sub}`);
      const env = s.environment ?? {};
      for (const variable of [
        "STATE_DATABASE_URL",
        "DATA_DATABASE_URL",
        "OBJECT_STORE_URL",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_REGION",
        "DISPATCHER_URL",
        "INTERNAL_AUTH_TOKEN",
        "LEASE_DURATION_MS",
        "VISIBILITY_TIMEOUT_MS",
        "MAX_ATTEMPTS",
        "MAX_RECEIVES",
      ]) {
        expect({ service: name, variable, set: variable in env }).toEqual({
          service: name,
          variable,
          set: true,
        });
      }
      expect(env.OBJECT_STORE_URL).toMatch(/^s3:\/\/harness-batches\//);
    }
  });

  test("the bucket the roles use is the one created at start", () => {
    const mc = svc("minio-bucket").command;
    expect(Array.isArray(mc) ? mc.join(" ") : mc).toContain(
      "mb --ignore-existing local/harness-batches",
    );
  });

  test("health checks and restart policies", () => {
    for (const name of ["postgres", "minio", "dispatcher"])
      expect(svc(name).healthcheck).toBeDefined();
    for (const name of ["dispatcher", "worker", "sink", "postgres", "minio"]) {
      expect(svc(name).restart).toBe("unless-stopped");
    }
    for (const name of ["migrate", "minio-bucket"]) expect(svc(name).restart).toBe("no");
    expect(svc("migrate").depends_on?.postgres?.condition).toBe("service_healthy");
    expect(svc("dispatcher").depends_on?.migrate?.condition).toBe("service_completed_successfully");
  });
});
