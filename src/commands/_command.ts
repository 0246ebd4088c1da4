import { type ArgsDef, type CommandDef, defineCommand, type ParsedArgs } from "citty";
import { ConfigError, config } from "../config";
import { describeError } from "../describe-error";
import { armFailpoints } from "../failpoints";
import { setLogLevel } from "../log";

/**
 * Every harness subcommand goes through here: unknown flags are refused, the
 * configuration is parsed once, and any failure ends the process with one
 * clear line on stderr — exit 2 for usage and configuration, 1 otherwise.
 */

export class UsageError extends Error {
  override name = "UsageError";
}

function allowedFlags(args: ArgsDef): Set<string> {
  const names = new Set(["help", "h"]);
  for (const [name, def] of Object.entries(args)) {
    names.add(name);
    names.add(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
    const alias = "alias" in def ? def.alias : undefined;
    for (const a of Array.isArray(alias) ? alias : alias ? [alias] : []) names.add(a);
    if (def.type === "boolean") names.add(`no-${name}`);
  }
  return names;
}

export function rejectUnknownFlags(rawArgs: readonly string[], args: ArgsDef): void {
  const allowed = allowedFlags(args);
  for (const raw of rawArgs) {
    if (raw === "--") break;
    const match = /^--?([^=]+)/.exec(raw);
    if (match?.[1] === undefined || /^-\d/.test(raw)) continue;
    if (!allowed.has(match[1])) throw new UsageError(`unknown option ${raw.split("=")[0]}`);
  }
}

export function fail(name: string, err: unknown): never {
  const usage = err instanceof UsageError || err instanceof ConfigError;
  process.stderr.write(`harness ${name}: ${describeError(err)}\n`);
  process.exit(usage ? 2 : 1);
}

export function harnessCommand<T extends ArgsDef>(def: {
  name: string;
  description: string;
  args: T;
  subCommands?: CommandDef["subCommands"];
  run?: (ctx: { args: ParsedArgs<T>; rawArgs: string[] }) => Promise<void> | void;
}): CommandDef<T> {
  const args = def.args;
  return defineCommand({
    meta: { name: def.name, description: def.description },
    args,
    subCommands: def.subCommands,
    run: def.run
      ? async (ctx) => {
          try {
            rejectUnknownFlags(ctx.rawArgs, args);
            const cfg = config();
            setLogLevel(cfg.logLevel);
            armFailpoints(cfg.failpoints);
            await def.run?.({ args: ctx.args, rawArgs: ctx.rawArgs });
          } catch (err) {
            fail(def.name, err);
          }
        }
      : undefined,
  });
}

/** A positive integer flag, parsed (citty hands every value over as a string). */
export function intFlag(name: string, value: unknown, min = 1, max = 1_000_000): number {
  const text = String(value ?? "");
  if (!/^\d+$/.test(text))
    throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(value)}`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}
