import { type ArgsDef, type CommandDef, runCommand } from "citty";
import { fail, UsageError } from "./_command";
import { commandArgs, commandMeta, renderUsage, subCommandsOf } from "./_usage";

/**
 * The command line's front door (in place of citty's `runMain`): finds the
 * command argv names, answers `--help` and `--version`, refuses an unknown
 * command, an unknown flag or a missing required flag with one line and
 * exit 2, then lets citty parse the flags and run the command.
 */

export interface Resolved {
  /** `["harness", "task", "create"]` */
  path: string[];
  cmd: CommandDef<ArgsDef>;
  /** argv without the command names. */
  rest: string[];
  /** A word where a subcommand of `path` was expected that names none. */
  unknown?: string;
}

const flagName = (raw: string): string | undefined =>
  /^-\d/.test(raw) ? undefined : /^--?([^=]+)/.exec(raw)?.[1];

function beforeDoubleDash(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf("--");
  return end < 0 ? argv : argv.slice(0, end);
}

/** Walks argv down the subcommand tree. Command groups take no flag with a value. */
export async function resolveCommand(
  root: CommandDef<ArgsDef>,
  argv: readonly string[],
): Promise<Resolved> {
  const path = [(await commandMeta(root)).name ?? "harness"];
  let cmd = root;
  let rest = [...argv];
  for (;;) {
    const subs = await subCommandsOf(cmd);
    const at = beforeDoubleDash(rest).findIndex((a) => !a.startsWith("-"));
    const name = rest[at];
    if (Object.keys(subs).length === 0 || name === undefined) return { path, cmd, rest };
    const sub = subs[name];
    if (sub === undefined) return { path, cmd, rest, unknown: name };
    path.push(name);
    cmd = sub;
    rest = rest.filter((_, i) => i !== at);
  }
}

/** Refuses flags the command does not define (one spelling each) and missing required ones. */
export function checkFlags(rawArgs: readonly string[], args: ArgsDef): void {
  const allowed = new Set(["help", "h"]);
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    allowed.add(name);
    for (const a of ["alias" in def ? (def.alias ?? []) : []].flat()) allowed.add(a);
    if (def.type === "boolean") allowed.add(`no-${name}`);
  }
  const given = beforeDoubleDash(rawArgs).flatMap((raw) => flagName(raw) ?? []);
  const unknown = given.find((name) => !allowed.has(name));
  if (unknown !== undefined) throw new UsageError(`unknown option --${unknown}`);
  const missing = Object.entries(args).find(
    ([n, def]) => def.type !== "positional" && def.required === true && !given.includes(n),
  );
  if (missing !== undefined) throw new UsageError(`missing required option --${missing[0]}`);
  const positionals = Object.entries(args).filter(([, def]) => def.type === "positional");
  const lacking = positionals.find(
    ([, def], i) => def.required === true && i >= positionalCount(rawArgs, args),
  );
  if (lacking !== undefined) {
    throw new UsageError(`missing required argument ${lacking[0].toUpperCase()}`);
  }
}

/** The arguments that are neither a flag nor a flag's value (everything after `--` counts). */
function positionalCount(rawArgs: readonly string[], args: ArgsDef): number {
  const end = rawArgs.indexOf("--");
  const flags = end < 0 ? rawArgs : rawArgs.slice(0, end);
  let count = end < 0 ? 0 : rawArgs.length - end - 1;
  for (let i = 0; i < flags.length; i++) {
    const raw = flags[i] ?? "";
    const name = flagName(raw);
    if (name === undefined) count++;
    else if (!raw.includes("=") && args[name]?.type === "string") i++;
  }
  return count;
}

export async function runCli(root: CommandDef<ArgsDef>, argv: readonly string[]): Promise<void> {
  const { path, cmd, rest, unknown } = await resolveCommand(root, argv);
  const command = path.join(" ");
  const seeHelp = (what: string) => new UsageError(`${what} (see ${command} --help)`);
  if (unknown !== undefined) fail(command, seeHelp(`unknown command ${unknown}`));
  const flags = beforeDoubleDash(rest);
  const version = (await commandMeta(cmd)).version;
  if (version !== undefined && flags.length === 1 && flags[0] === "--version") {
    process.stdout.write(`${version}\n`);
    return;
  }
  if (flags.includes("--help") || flags.includes("-h") || cmd.run === undefined) {
    process.stdout.write(await renderUsage(path, cmd));
    return;
  }
  try {
    checkFlags(rest, await commandArgs(cmd));
  } catch (err) {
    fail(command, err instanceof UsageError ? seeHelp(err.message) : err);
  }
  try {
    await runCommand(cmd, { rawArgs: rest });
  } catch (err) {
    fail(command, err);
  }
}
