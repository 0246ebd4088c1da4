import { type ArgsDef, type CommandDef, defineCommand, type ParsedArgs } from "citty";
import {
  type Config,
  ConfigError,
  config,
  requireDataDatabase,
  requireStateDatabase,
} from "../config";
import { MISSING_SCHEMA, missingMigrationError } from "../db/errors";
import { checkDatabase, type DatabaseKind, DatabaseUnreachableError } from "../db/preflight";
import { describeError } from "../describe-error";
import { armFailpoints } from "../failpoints";
import { setLogLevel } from "../log";

/**
 * Every harness subcommand goes through here: the configuration is parsed
 * once, the databases it uses are checked, and any failure ends the process
 * with one clear line on stderr — exit 2 for usage and configuration, 1
 * otherwise. (Unknown commands and flags are refused before, in _main.ts.)
 */

export class UsageError extends Error {
  override name = "UsageError";
}

/** The one line a failure prints after `harness <command>: `. */
function failureLine(err: unknown): string {
  if (err instanceof UpNotRunningError) return `${describeError(err.cause)}; ${err.message}`;
  const missing = missingMigrationError(err);
  if (missing !== undefined) return `${MISSING_SCHEMA} (${missing.message})`;
  return describeError(err);
}

/** A database named by `.harness/env` cannot be reached: the `harness up` that wrote it is gone. */
class UpNotRunningError extends Error {
  override name = "UpNotRunningError";
}

export function fail(command: string, err: unknown): never {
  const usage = err instanceof UsageError || err instanceof ConfigError;
  process.stderr.write(`${command}: ${failureLine(err)}\n`);
  process.exit(usage ? 2 : 1);
}

/**
 * The databases a command uses, checked before it runs. A one-shot command
 * fails at once, naming the database, when it cannot reach one; a
 * long-running role then starts anyway and retries on its own.
 */
export interface DatabaseChecks {
  /** `queue`: the state database when the queues live there (pgqueue, QUEUE_URL unset). */
  databases: ReadonlyArray<DatabaseKind | "queue">;
  /** Also require the tables `harness migrate` makes (everything but migrate itself). */
  schema: boolean;
  oneShot: boolean;
}

const CONNECT_DEADLINE_MS = 3_000;

function databasesOf(cfg: Config, checks: DatabaseChecks): DatabaseKind[] {
  const kinds = new Set<DatabaseKind>();
  for (const k of checks.databases) {
    if (k !== "queue") kinds.add(k);
    else if (cfg.queue.url === undefined) kinds.add("state");
  }
  return [...kinds];
}

async function checkDatabases(cfg: Config, checks: DatabaseChecks): Promise<void> {
  for (const kind of databasesOf(cfg, checks)) {
    const url = kind === "state" ? requireStateDatabase(cfg) : requireDataDatabase(cfg);
    try {
      await checkDatabase(url, kind, { schema: checks.schema, timeoutMs: CONNECT_DEADLINE_MS });
    } catch (err) {
      if (!(err instanceof DatabaseUnreachableError)) throw err;
      if (!checks.oneShot) continue;
      if (cfg.upDir === undefined) throw err;
      throw new UpNotRunningError(
        `is harness up running? (these settings come from ${cfg.upDir}/env)`,
        { cause: err },
      );
    }
  }
}

export function harnessCommand<T extends ArgsDef>(def: {
  /** The words after `harness`, e.g. `task create`. */
  name: string;
  description: string;
  args: T;
  subCommands?: CommandDef["subCommands"];
  checks?: DatabaseChecks;
  run?: (ctx: { args: ParsedArgs<T>; rawArgs: string[] }) => Promise<void> | void;
}): CommandDef<T> {
  const { checks, run } = def;
  return defineCommand({
    meta: { name: def.name.split(" ").at(-1), description: def.description },
    args: def.args,
    subCommands: def.subCommands,
    run: run
      ? async (ctx) => {
          try {
            const cfg = config();
            setLogLevel(cfg.logLevel);
            armFailpoints(cfg.failpoints);
            if (checks !== undefined) await checkDatabases(cfg, checks);
            await run({ args: ctx.args, rawArgs: ctx.rawArgs });
          } catch (err) {
            fail(`harness ${def.name}`, err);
          }
        }
      : undefined,
  });
}

/** A non-negative integer flag, parsed (citty hands every value over as a string). */
export function intFlag(name: string, value: unknown, min = 1, max = 1_000_000): number {
  const text = String(value ?? "");
  if (!/^\d+$/.test(text))
    throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}
