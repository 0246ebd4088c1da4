import { chmodSync, mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startEmbeddedPostgres } from "../../src/platform/embedded";

export { freePort };

/** A throwaway PostgreSQL server for tests: its own data folder and a free port. */
export interface EmbeddedServer {
  url: (database?: string) => string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Stops and deletes the data folder. */
  destroy(): Promise<void>;
}

export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const dir = mkdtempSync(join(tmpdir(), "harness-pg-"));
  // initdb runs as the postgres user, which must be able to reach the data folder.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const options = { dir, password: "harness", port, fast: true };
  let pg: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined =
    await startEmbeddedPostgres(options);
  const stop = async () => {
    await pg?.stop();
    pg = undefined;
  };
  return {
    port,
    url: (database = "postgres") => `postgres://postgres:harness@127.0.0.1:${port}/${database}`,
    async start() {
      pg ??= await startEmbeddedPostgres(options);
    },
    stop,
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
