import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { Subprocess } from "bun";
import * as v from "valibot";

/**
 * nats-server processes of our own, on loopback: one with a given config
 * (the permission test runs deploy/nats/ this way), or a cluster of three
 * with routes and JetStream (the node-kill test, and later `verify
 * --nats-cluster`). Each gets its own store folder; `stop` ends it and
 * `kill` sends SIGKILL, as a crash would.
 */

/** NATS_SERVER_BIN, else `nats-server` on PATH, else Debian's. */
export const NATS_SERVER_BINARY =
  process.env.NATS_SERVER_BIN ?? Bun.which("nats-server") ?? "/usr/sbin/nats-server";
const READY_LINE = "Server is ready";
const START_TIMEOUT_MS = 15_000;

export interface NatsServerProcess {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** SIGKILL, as a crash would; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Starts it again on the same port, store and config (after a stop or kill). */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

export interface NatsServerOptions {
  name: string;
  /** A folder of its own: its config, its JetStream store and its log go there. */
  dir: string;
  port?: number;
  /**
   * Config text, written to `<dir>/nats.conf` (it may include files put in
   * `dir`, as the permission test does with deploy/nats/accounts.conf);
   * listen address, port, name and store are given as flags.
   */
  config?: string;
  env?: Record<string, string>;
}

async function spawnUntilReady(
  argv: string[],
  env: Record<string, string>,
  name: string,
): Promise<{ proc: Subprocess<"ignore", "pipe", "pipe">; output: () => string }> {
  const proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  let text = "";
  const ready = Promise.withResolvers<void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes(READY_LINE)) ready.resolve();
    }
  };
  void pump(proc.stderr);
  void pump(proc.stdout);
  void proc.exited.then((code) =>
    ready.reject(new Error(`nats-server ${name} exited ${code}: ${text.slice(-2000)}`)),
  );
  const timer = setTimeout(
    () =>
      ready.reject(
        new Error(`nats-server ${name} not ready in ${START_TIMEOUT_MS} ms: ${text.slice(-2000)}`),
      ),
    START_TIMEOUT_MS,
  );
  try {
    await ready.promise;
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { proc, output: () => text };
}

export async function startNatsServer(o: NatsServerOptions): Promise<NatsServerProcess> {
  mkdirSync(o.dir, { recursive: true });
  const port = o.port ?? (await freePort());
  const configFile = join(o.dir, "nats.conf");
  writeFileSync(configFile, o.config ?? "");
  const argv = [
    NATS_SERVER_BINARY,
    "-c",
    configFile,
    "-n",
    o.name,
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-js",
    "-sd",
    join(o.dir, "store"),
  ];
  const env = { ...filteredEnv(), ...o.env };
  let current = await spawnUntilReady(argv, env, o.name);
  const gone = async (signal: NodeJS.Signals, graceMs: number) => {
    const { proc } = current;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await proc.exited;
    clearTimeout(timer);
  };
  return {
    name: o.name,
    port,
    url: `nats://127.0.0.1:${port}`,
    get pid() {
      return current.proc.pid;
    },
    output: () => current.output(),
    kill: () => gone("SIGKILL", 0),
    stop: (graceMs = 5_000) => gone("SIGTERM", graceMs),
    async restart() {
      await gone("SIGTERM", 5_000);
      current = await spawnUntilReady(argv, env, o.name);
    },
  };
}

/** A JetStream API answer that is not an error (an error answer has `error` instead). */
const Answered = v.object({ type: v.string(), error: v.optional(v.never()) });

/** The stream jetStreamReady places and deletes to learn that a cluster can hold replicas. */
const PROBE = "harness_ready_probe";

/**
 * Waits until JetStream answers on `url` (a new cluster first elects its
 * meta leader) and, with `replicas` above 1, can place a stream of that many
 * replicas: a meta leader elected by a quorum may not know every peer yet,
 * and a stream created then fails with "no suitable peers for placement".
 */
export async function jetStreamReady(url: string, replicas = 1, timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers: url.split(",").map((u) => u.replace("nats://", "")) });
  const deadline = Date.now() + timeoutMs;
  const ask = (subject: string, body = "") =>
    nc
      .request(subject, body, { timeout: 2_000 })
      .then((m) => v.is(Answered, m.json()))
      .catch(() => false);
  const probe = JSON.stringify({
    name: PROBE,
    subjects: [`${PROBE}.none`],
    num_replicas: replicas,
    storage: "memory",
  });
  try {
    for (;;) {
      if (
        (await ask("$JS.API.INFO")) &&
        (replicas <= 1 || (await ask(`$JS.API.STREAM.CREATE.${PROBE}`, probe)))
      ) {
        if (replicas > 1) await ask(`$JS.API.STREAM.DELETE.${PROBE}`);
        return;
      }
      if (Date.now() > deadline)
        throw new Error(`JetStream at ${url} not ready in ${timeoutMs} ms`);
      await Bun.sleep(200);
    }
  } finally {
    await nc.close();
  }
}

function filteredEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

export interface NatsCluster {
  nodes: NatsServerProcess[];
  /** Every node's client URL, comma-separated: a QUEUE_URL. */
  url: string;
  stop(): Promise<void>;
}

/** `size` nodes on loopback, routed to each other, JetStream clustered. */
export async function startNatsCluster(o: {
  dir: string;
  size?: number;
  name?: string;
}): Promise<NatsCluster> {
  const size = o.size ?? 3;
  const clusterName = o.name ?? "harness";
  const routes: number[] = [];
  for (let i = 0; i < size; i++) routes.push(await freePort());
  const routeList = routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
  const nodes = await Promise.all(
    routes.map((routePort, i) =>
      startNatsServer({
        name: `${clusterName}-n${i + 1}`,
        dir: join(o.dir, `n${i + 1}`),
        config: `cluster {\n  name: ${clusterName}\n  listen: 127.0.0.1:${routePort}\n  routes: [${routeList}]\n}\n`,
      }),
    ),
  );
  const url = nodes.map((n) => n.url).join(",");
  try {
    await jetStreamReady(url, size);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw err;
  }
  return {
    nodes,
    url,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
