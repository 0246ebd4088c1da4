import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { parseConfig } from "../../src/config";
import type { NatsServerProcess } from "../../src/platform/nats-server";
import { NatsQueue } from "../../src/queue/nats/backend";
import { parseNatsUrl } from "../../src/queue/nats/connect";
import { NATS_USERS, ROLES } from "../../src/queue/nats/permissions";
import { ownNatsServer, tempDir, useOwnNats } from "../support/nats";

useOwnNats();

/**
 * compose.nats.yaml, the layer that puts a compose deployment's queues on
 * NATS. Docker cannot run here, so its structure is checked (every service
 * it changes exists in compose.yaml; the broker runs deploy/nats/harness.conf
 * with JetStream, a health check and its data in a volume; every password is
 * required) and its wiring is run: each role's QUEUE_URL, filled in as
 * Compose would, logs in on a nats-server with the deployed users as that
 * role's own broker user, who can do that role's job.
 */

const ROOT = join(import.meta.dir, "..", "..");
const Service = v.looseObject({
  image: v.optional(v.string()),
  command: v.optional(v.array(v.string())),
  environment: v.optional(v.record(v.string(), v.string())),
  depends_on: v.optional(v.record(v.string(), v.object({ condition: v.string() }))),
  healthcheck: v.optional(v.object({ test: v.array(v.string()) })),
  restart: v.optional(v.string()),
  volumes: v.optional(v.array(v.string())),
});
const Compose = v.looseObject({
  services: v.record(v.string(), Service),
  volumes: v.optional(v.record(v.string(), v.nullable(v.object({})))),
});
type Compose = v.InferOutput<typeof Compose>;
const read = (file: string) =>
  v.parse(Compose, Bun.YAML.parse(readFileSync(join(ROOT, file), "utf8")));

const base = read("compose.yaml");
const overlay = read("compose.nats.yaml");
const nats = overlay.services.nats;
const conf = readFileSync(join(ROOT, "deploy/nats/harness.conf"), "utf8");
const accounts = readFileSync(join(ROOT, "deploy/nats/accounts.conf"), "utf8");

/** The broker user each service of compose.yaml runs as. */
const SERVICE_ROLE = {
  migrate: "owner",
  dispatcher: "dispatcher",
  worker: "worker",
  sink: "sink",
} as const;

const passwordVar = (role: string) => `HARNESS_NATS_${role.toUpperCase()}_PASSWORD`;

/** Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?message}`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_, name: string, op, rest: string) => {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
    if (op === "?") throw new Error(`required variable ${name} is missing a value: ${rest}`);
    return op === "-" ? rest : "";
  });
}

/** The `${VAR:?…}` variables a text requires. */
const required = (text: string) =>
  [...text.matchAll(/\$\{(\w+):\?[^}]*\}/g)].map((m) => m[1] ?? "");

describe("compose.nats.yaml", () => {
  test("changes only services compose.yaml has, and adds the broker", () => {
    expect(Object.keys(overlay.services).sort()).toEqual(
      ["nats", ...Object.keys(SERVICE_ROLE)].sort(),
    );
    for (const name of Object.keys(SERVICE_ROLE)) expect(base.services[name]).toBeDefined();
    expect(base.services.nats).toBeUndefined();
  });

  test("the broker runs deploy/nats/harness.conf with JetStream, its data in a volume, healthy when JetStream is", () => {
    expect(nats?.image).toMatch(/^nats:2\.\d+/);
    const command = nats?.command ?? [];
    expect(command.slice(0, 3)).toEqual(["nats-server", "-c", "/etc/nats/harness.conf"]);
    expect(nats?.volumes).toContain("./deploy/nats:/etc/nats:ro");
    expect(existsSync(join(ROOT, "deploy/nats/harness.conf"))).toBe(true);
    expect(conf).toMatch(/^include \.\/accounts\.conf$/m);
    // The JetStream store is inside the named volume.
    const store = /store_dir:\s*"([^"]+)"/.exec(conf)?.[1] ?? "";
    const data = (nats?.volumes ?? []).find((m) => m.startsWith("natsdata:"));
    expect(store.startsWith(`${data?.split(":")[1]}/`)).toBe(true);
    expect(Object.keys(overlay.volumes ?? {})).toContain("natsdata");
    // The health check asks the monitoring port the command opens.
    const port = command[command.indexOf("-m") + 1];
    expect(nats?.healthcheck?.test.join(" ")).toContain(
      `http://127.0.0.1:${port}/healthz?js-enabled-only=true`,
    );
    expect(nats?.restart).toBe("unless-stopped");
  });

  test("every broker password is required, and they are exactly the ones the broker's users read", () => {
    const read = [...accounts.matchAll(/password: \$(\w+)/g)].map((m) => m[1]);
    expect(read.sort()).toEqual(ROLES.map(passwordVar).sort());
    const env = nats?.environment ?? {};
    for (const role of ROLES) {
      expect(env[passwordVar(role)]).toMatch(new RegExp(`^\\$\\{${passwordVar(role)}:\\?`));
    }
    const text = readFileSync(join(ROOT, "compose.nats.yaml"), "utf8");
    expect(new Set(required(text))).toEqual(new Set(ROLES.map(passwordVar)));
    expect(() => interpolate(text, {})).toThrow("required variable HARNESS_NATS_OWNER_PASSWORD");
  });

  test("each role gets its own broker user's URL and no one else's password, and waits for a healthy broker", () => {
    for (const [service, role] of Object.entries(SERVICE_ROLE)) {
      const s = overlay.services[service];
      const env = s?.environment ?? {};
      expect(Object.keys(env).sort()).toEqual(["QUEUE_NAMESPACE", "QUEUE_URL"]);
      expect(env.QUEUE_NAMESPACE).toBe("harness");
      const url = env.QUEUE_URL ?? "";
      expect(required(url)).toEqual([passwordVar(role)]);
      expect(url.startsWith(`nats://${NATS_USERS[role]}:`)).toBe(true);
      expect(url.endsWith("@nats:4222")).toBe(true);
      expect(s?.depends_on?.nats?.condition).toBe("service_healthy");
    }
  });
});

test("the worker loads no database credentials and the sink drops the state URL; otherwise their commands are compose.yaml's", () => {
  const command = (c: Compose, name: string) => (c.services[name]?.command ?? []).join(" ");
  expect(command(overlay, "worker")).toBe(
    command(base, "worker").replace(". /run/harness/db.env && ", ""),
  );
  expect(command(overlay, "worker")).not.toContain("db.env");
  expect(command(overlay, "sink")).toBe(
    command(base, "sink").replace(" && exec ", " && unset STATE_DATABASE_URL && exec "),
  );
  // The dispatcher and migrate keep theirs.
  expect(overlay.services.dispatcher?.command).toBeUndefined();
  expect(overlay.services.migrate?.command).toBeUndefined();
});

describe("compose.nats.yaml's URLs on a broker with the deployed users", () => {
  // As compose.nats.yaml says to make them: a letter, then hex.
  const hex = () => randomUUID().replaceAll("-", "");
  const passwords = Object.fromEntries(ROLES.map((r) => [passwordVar(r), `p${hex()}`]));
  let server: NatsServerProcess;
  const opened: NatsQueue[] = [];

  /** A service's QUEUE_URL as Compose fills it in, pointed at the test's broker. */
  async function queueOf(service: keyof typeof SERVICE_ROLE): Promise<NatsQueue> {
    const raw = overlay.services[service]?.environment?.QUEUE_URL ?? "";
    const url = interpolate(raw, passwords).replace("@nats:4222", `@127.0.0.1:${server.port}`);
    const cfg = parseConfig({ QUEUE_URL: url, QUEUE_NAMESPACE: "harness" });
    expect(parseNatsUrl(url).user).toBe(NATS_USERS[SERVICE_ROLE[service]]);
    const q = await NatsQueue.open({
      url: cfg.queue.url ?? "",
      namespace: cfg.queue.namespace,
      name: service,
    });
    opened.push(q);
    return q;
  }

  beforeAll(async () => {
    const dir = tempDir("compose-nats");
    copyFileSync(join(ROOT, "deploy/nats/accounts.conf"), join(dir, "accounts.conf"));
    server = await ownNatsServer({
      name: "compose-nats",
      dir,
      config: "include ./accounts.conf\n",
      env: interpolateEnv(nats?.environment ?? {}, passwords),
    });
  });
  afterAll(async () => {
    await Promise.all(opened.map((q) => q.close()));
  });

  test("migrate creates the streams; the dispatcher publishes; the worker and the sink each receive their own queue only", async () => {
    const migrate = await queueOf("migrate");
    expect((await migrate.ensure({ visibilityTimeoutMs: 30_000 })).length).toBeGreaterThan(0);
    const dispatcher = await queueOf("dispatcher");
    const taskId = randomUUID();
    await dispatcher.publisher().publish("task_wakeup", [{ payload: { task_id: taskId } }]);
    const options = { visibilityTimeoutMs: 30_000, maxReceives: 5 };
    const worker = await (await queueOf("worker")).consumer("task_wakeup", options);
    const [m] = await worker.receive(1);
    expect(m?.payload).toEqual({ task_id: taskId });
    if (m !== undefined) expect(await worker.ack(m)).toBe(true);
    const sink = await queueOf("sink");
    await sink.consumer("buffer_queue", options);
    await expect(sink.consumer("task_wakeup", options)).rejects.toThrow();
  }, 30_000);
});

function interpolateEnv(env: Record<string, string>, values: Record<string, string>) {
  return Object.fromEntries(Object.entries(env).map(([k, x]) => [k, interpolate(x, values)]));
}
