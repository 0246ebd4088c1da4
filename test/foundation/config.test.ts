import { describe, expect, test } from "bun:test";
import { ConfigError, parseConfig } from "../../src/config";
import { runHarness } from "../support/processes";

describe("config", () => {
  test("defaults, and DATABASE_URL as the default for both databases", () => {
    const c = parseConfig({ DATABASE_URL: "postgres://u@h/db" });
    expect(c.stateDatabaseUrl).toBe("postgres://u@h/db");
    expect(c.dataDatabaseUrl).toBe("postgres://u@h/db");
    expect(c.port).toBe(8080);
    expect(c.dispatcherUrl).toBe("http://127.0.0.1:8080");
    expect(c.leaseDurationMs).toBe(30_000);
  });

  test("STATE_ and DATA_DATABASE_URL override DATABASE_URL", () => {
    const c = parseConfig({
      DATABASE_URL: "postgres://u@h/both",
      DATA_DATABASE_URL: "postgres://u@h/data",
    });
    expect(c.stateDatabaseUrl).toBe("postgres://u@h/both");
    expect(c.dataDatabaseUrl).toBe("postgres://u@h/data");
  });

  test.each([
    ["LEASE_DURATION_MS", "abc"],
    ["LEASE_DURATION_MS", "0"],
    ["LEASE_DURATION_MS", "-5"],
    ["MAX_RECEIVES", "1.5"],
    ["PORT", "70000"],
    ["DATABASE_URL", "mysql://x"],
    ["OBJECT_STORE_URL", "file://relative"],
    ["INTERNAL_AUTH_TOKEN", "short"],
    ["QUEUE_URL", "amqp://broker:5672"],
    ["QUEUE_URL", "nats://"],
    ["QUEUE_NAMESPACE", "has.dots"],
    ["QUEUE_NAMESPACE", "has space"],
  ])("a bad %s (%p) is refused with a message naming it", (name, value) => {
    expect(() => parseConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => parseConfig({ [name]: value })).toThrow(new RegExp(`^${name} `));
  });

  test("QUEUE_URL unset means pgqueue; QUEUE_NAMESPACE defaults to harness", () => {
    expect(parseConfig({}).queue).toEqual({ url: undefined, namespace: "harness" });
    const nats = parseConfig({
      QUEUE_URL: "nats://127.0.0.1:4222,nats://10.0.0.2:4222",
      QUEUE_NAMESPACE: "ci-7",
    });
    expect(nats.queue).toEqual({
      url: "nats://127.0.0.1:4222,nats://10.0.0.2:4222",
      namespace: "ci-7",
    });
  });

  test("a role whose QUEUE_URL broker cannot be reached stops with one line naming it, exit 1", async () => {
    const r = await runHarness(["dlq", "list"], {
      DATABASE_URL: "postgres://x@127.0.0.1:1/x",
      QUEUE_URL: "nats://user:secret@127.0.0.1:1",
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("cannot reach NATS at 127.0.0.1:1");
    expect(r.stderr).not.toContain("secret");
  });

  test("an error names the variable and the rule, never a secret's value or a URL's password", () => {
    const secret = "hunter2-s3cret";
    const cases: Array<[string, string, RegExp]> = [
      ["INTERNAL_AUTH_TOKEN", secret, /^INTERNAL_AUTH_TOKEN must be at least 16 characters$/],
      ["DATABASE_URL", `mysql://admin:${secret}@db/x`, /^DATABASE_URL must be a postgres:\/\//],
      ["STATE_DATABASE_URL", `http://admin:${secret}@db/x`, /^STATE_DATABASE_URL must be/],
      ["DATA_DATABASE_URL", `x${secret}`, /^DATA_DATABASE_URL must be/],
      [
        "DISPATCHER_URL",
        `http://admin:${secret}@d:8080`,
        /^DISPATCHER_URL must not carry credentials/,
      ],
      ["S3_ENDPOINT", `https://k:${secret}@minio:9000`, /^S3_ENDPOINT must not carry credentials/],
      [
        "OBJECT_STORE_URL",
        `s3://k:${secret}@bucket/p`,
        /^OBJECT_STORE_URL must not carry credentials/,
      ],
      ["OBJECT_STORE_URL", `ftp://${secret}`, /^OBJECT_STORE_URL must be file:/],
    ];
    for (const [name, value, rule] of cases) {
      let message = "";
      try {
        parseConfig({ [name]: value });
      } catch (err) {
        message = err instanceof ConfigError ? err.message : String(err);
      }
      expect({ name, message }).toEqual({ name, message: expect.stringMatching(rule) });
      expect({ name, leaks: message.includes(secret) }).toEqual({ name, leaks: false });
    }
  });

  test("plain numbers and names are repeated, with the rule and no received value from valibot", () => {
    expect(() => parseConfig({ PORT: "eighty" })).toThrow(
      /^PORT must be a positive integer \(got "eighty"\)$/,
    );
    expect(() => parseConfig({ LOG_LEVEL: "loud" })).toThrow(
      /^LOG_LEVEL Invalid type: expected \("debug" \| "info" \| "warn" \| "error"\) \(got "loud"\)$/,
    );
  });

  test("a signing key that is not a JWK is refused without repeating any of its fields", async () => {
    const secret = "private-part-s3cret";
    const r = await runHarness(["dispatcher"], {
      DATABASE_URL: "postgres://x@127.0.0.1:1/x",
      OBJECT_STORE_URL: "file:///tmp/harness-test-objects",
      INTERNAL_AUTH_TOKEN: "internal-token-0123456789",
      CAPABILITY_SIGNING_KEY: JSON.stringify({ kty: "OKP", crv: "Ed25519", x: 7, d: [secret] }),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("CAPABILITY_SIGNING_KEY is not an Ed25519 JWK");
    expect(r.stderr).not.toContain(secret);
  });

  test("a bad value stops the process at start with one line naming the variable, exit 2", async () => {
    const r = await runHarness(["migrate"], {
      DATABASE_URL: "postgres://x@127.0.0.1:1/x",
      LEASE_DURATION_MS: "soon",
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("LEASE_DURATION_MS");
    const token = await runHarness(["dispatcher"], {
      DATABASE_URL: "postgres://x@127.0.0.1:1/x",
      INTERNAL_AUTH_TOKEN: "short-secret-x",
    });
    expect(token.code).toBe(2);
    expect(token.stderr.trim()).toBe(
      "harness dispatcher: INTERNAL_AUTH_TOKEN must be at least 16 characters",
    );
  });

  test("a missing database URL is refused naming DATABASE_URL", async () => {
    const r = await runHarness(["migrate"], {});
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "harness migrate: DATABASE_URL (or STATE_DATABASE_URL) is not set",
    );
  });

  test("an unknown flag is refused", async () => {
    const r = await runHarness(["migrate", "--frobnicate"], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --frobnicate");
  });

  test("--help and --version", async () => {
    const help = await runHarness(["--help"], {});
    expect(help.code).toBe(0);
    for (const cmd of ["migrate", "dispatcher", "worker", "sink", "task", "status"]) {
      expect(help.stdout).toContain(cmd);
    }
    const version = await runHarness(["--version"], {});
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
