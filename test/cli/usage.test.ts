import { describe, expect, test } from "bun:test";
import type { ArgsDef, CommandDef } from "citty";
import { UsageError } from "../../src/commands/_command";
import { checkFlags, resolveCommand } from "../../src/commands/_main";
import { commandArgs, renderUsage, subCommandsOf } from "../../src/commands/_usage";
import { harness } from "../../src/commands/index";
import { runHarness } from "../support/processes";

/**
 * The command line reads like every other CLI: every command and
 * subcommand has --help, flags have one kebab-case spelling, help rows are
 * not padded, and usage mistakes are one line with exit 2. The tree is
 * walked in-process (argv injected, as citty's own tests do); exit codes
 * are checked on real processes.
 */

async function everyCommand(): Promise<Array<{ path: string[]; cmd: CommandDef<ArgsDef> }>> {
  const out: Array<{ path: string[]; cmd: CommandDef<ArgsDef> }> = [];
  const walk = async (path: string[], cmd: CommandDef<ArgsDef>) => {
    out.push({ path, cmd });
    for (const [name, sub] of Object.entries(await subCommandsOf(cmd))) {
      await walk([...path, name], sub);
    }
  };
  await walk(["harness"], harness);
  return out;
}

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

describe("help", () => {
  test("every command's --help names its full path once, lists kebab-case flags, and pads no line", async () => {
    const commands = await everyCommand();
    expect(commands.map((c) => c.path.join(" "))).toContain("harness task create");
    for (const { path, cmd } of commands) {
      const name = path.join(" ");
      const text = await renderUsage(path, cmd);
      const lines = text.trimEnd().split("\n");
      expect(
        lines.filter((l) => l !== l.trimEnd()),
        name,
      ).toEqual([]);
      expect(lines[0]?.startsWith(`${name}: `), name).toBe(true);
      const usage = lines[lines.indexOf("USAGE") + 1] ?? "";
      expect(`${usage} `.startsWith(`  ${name} `), `${name}: ${usage}`).toBe(true);
      // No doubled command names (citty's own renderer printed `task task create`).
      const words = usage.trim().split(" ");
      expect(
        words.filter((w, i) => w === words[i - 1]),
        usage,
      ).toEqual([]);
      const args = await commandArgs(cmd);
      for (const [flag, def] of Object.entries(args)) {
        expect(flag, `${name} --${flag}`).toMatch(KEBAB);
        // A positional argument is shown by its name in capitals (harness user add … NAME).
        expect(text, name).toContain(def.type === "positional" ? flag.toUpperCase() : `--${flag}`);
      }
      for (const [, mentioned] of text.matchAll(/--([a-zA-Z][\w-]*)/g)) {
        expect(mentioned ?? "", `${name} mentions --${mentioned}`).toMatch(KEBAB);
      }
    }
  });

  test("argv finds the command, and what is left are its flags", async () => {
    const create = await resolveCommand(harness, ["task", "create", "--org", "acme"]);
    expect(create.path).toEqual(["harness", "task", "create"]);
    expect(create.rest).toEqual(["--org", "acme"]);
    expect(create.unknown).toBeUndefined();
    const bogus = await resolveCommand(harness, ["dlq", "bogus"]);
    expect(bogus.path).toEqual(["harness", "dlq"]);
    expect(bogus.unknown).toBe("bogus");
    const group = await resolveCommand(harness, ["task"]);
    expect(group.path).toEqual(["harness", "task"]);
    expect(group.unknown).toBeUndefined();
  });

  test("a flag has one spelling: the camelCase one is refused, and a required one must be given", async () => {
    const worker = (await resolveCommand(harness, ["worker"])).cmd;
    const args = await commandArgs(worker);
    expect(() =>
      checkFlags(["--until-idle", "--idle-ms=5", "--grace-ms", "7"], args),
    ).not.toThrow();
    expect(() => checkFlags(["--untilIdle"], args)).toThrow(UsageError);
    expect(() => checkFlags(["--idleMs", "5"], args)).toThrow("unknown option --idleMs");
    const create = await commandArgs((await resolveCommand(harness, ["task", "create"])).cmd);
    expect(() => checkFlags(["--alerts", "1"], create)).toThrow("missing required option --org");
    expect(() => checkFlags(["--org=acme", "--alerts", "-1"], create)).not.toThrow();
  });
});

describe("usage mistakes as processes: one line on stderr, exit 2", () => {
  const cases: Array<{ argv: string[]; says: string; help: string }> = [
    { argv: ["bogus"], says: "unknown command bogus", help: "harness --help" },
    { argv: ["task", "bogus"], says: "unknown command bogus", help: "harness task --help" },
    {
      argv: ["task", "create", "--alerts", "1"],
      says: "missing required option --org",
      help: "harness task create --help",
    },
    {
      argv: ["worker", "--untilIdle"],
      says: "unknown option --untilIdle",
      help: "harness worker --help",
    },
  ];
  for (const { argv, says, help } of cases) {
    test(`harness ${argv.join(" ")}`, async () => {
      const r = await runHarness(argv, { DATABASE_URL: undefined });
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: "" });
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(says);
      expect(lines[0]).toContain(`(see ${help})`);
    });
  }

  test("--help works on a subcommand, exit 0, the kebab-case flags listed", async () => {
    const r = await runHarness(["worker", "--help"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\n  harness worker [OPTIONS]\n");
    for (const flag of ["--until-idle", "--idle-ms <ms>", "--grace-ms <ms>"]) {
      expect(r.stdout).toContain(flag);
    }
    const group = await runHarness(["dlq", "--help"], {});
    expect(group.code).toBe(0);
    expect(group.stdout).toContain("\n  harness dlq <command> [--help]\n");
  });
});
