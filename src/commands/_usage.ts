import type { ArgDef, ArgsDef, CommandDef, CommandMeta, Resolvable } from "citty";

/**
 * `harness … --help`: the full command path, the flags as `--kebab-case`,
 * two aligned columns and nothing padded at the end of a line (citty's own
 * renderer pads every row to the widest one and repeats the parent's name).
 */

// citty lets a command give its meta, args and subcommands as values, promises or thunks.
function isThunk<T>(value: Resolvable<T>): value is (() => T) | (() => Promise<T>) {
  return typeof value === "function";
}

async function resolved<T>(value: Resolvable<T>): Promise<T> {
  return isThunk(value) ? await value() : await value;
}

export async function commandMeta(cmd: CommandDef<ArgsDef>): Promise<CommandMeta> {
  return (await resolved(cmd.meta)) ?? {};
}

export async function commandArgs(cmd: CommandDef<ArgsDef>): Promise<ArgsDef> {
  return (await resolved(cmd.args)) ?? {};
}

export async function subCommandsOf(
  cmd: CommandDef<ArgsDef>,
): Promise<Record<string, CommandDef<ArgsDef>>> {
  const subs = (await resolved(cmd.subCommands)) ?? {};
  const out: Record<string, CommandDef<ArgsDef>> = {};
  for (const [name, sub] of Object.entries(subs)) out[name] = await resolved(sub);
  return out;
}

function flagLabel(name: string, def: ArgDef): string {
  if (def.type === "positional") return name.toUpperCase();
  if (def.type === "boolean") return `--${name}`;
  return `--${name} <${def.valueHint ?? name.split("-").at(-1)}>`;
}

function flagNote(def: ArgDef): string {
  const notes = [def.description ?? ""];
  if (def.required === true) notes.push("(required)");
  if (def.default !== undefined && def.type !== "boolean") notes.push(`(default ${def.default})`);
  return notes.filter((n) => n !== "").join(" ");
}

/** Rows as `  left  right`, the right column aligned; a row without a right side is not padded. */
function columns(rows: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) =>
    right === "" ? `  ${left}` : `  ${left.padEnd(width)}  ${right}`.trimEnd(),
  );
}

export async function renderUsage(
  path: readonly string[],
  cmd: CommandDef<ArgsDef>,
): Promise<string> {
  const name = path.join(" ");
  const meta = await commandMeta(cmd);
  const args = Object.entries(await commandArgs(cmd));
  const subs = Object.entries(await subCommandsOf(cmd));
  const lines = [`${name}: ${meta.description ?? ""}`.trimEnd(), "", "USAGE"];
  if (subs.length > 0) lines.push(`  ${name} <command> [--help]`);
  else {
    const required = args.filter(([, def]) => def.required === true && def.type !== "positional");
    const positional = args.filter(([, def]) => def.type === "positional");
    const usage = [name, ...required.map(([n, def]) => flagLabel(n, def))];
    if (required.length + positional.length < args.length) usage.push("[OPTIONS]");
    usage.push(...positional.map(([n, def]) => flagLabel(n, def)));
    lines.push(`  ${usage.join(" ")}`);
  }
  const options: Array<readonly [string, string]> = args.map(([n, def]) => [
    flagLabel(n, def),
    flagNote(def),
  ]);
  options.push(["-h, --help", "show this help"]);
  if (meta.version !== undefined) options.push(["--version", "print the version"]);
  lines.push("", "OPTIONS", ...columns(options));
  if (subs.length > 0) {
    const rows = await Promise.all(
      subs.map(async ([n, sub]) => [n, (await commandMeta(sub)).description ?? ""] as const),
    );
    lines.push("", "COMMANDS", ...columns(rows), "", `Run ${name} <command> --help for its flags.`);
  }
  return `${lines.join("\n")}\n`;
}
