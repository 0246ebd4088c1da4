import { config, requireDataDatabase, requireStateDatabase } from "../config";
import { USER_ROLES, type UserRole, userNameProblem } from "../db/roles";
import { type OwnerUrls, userAdd, userRemove } from "../users/provision";
import { harnessCommand, UsageError } from "./_command";

/**
 * `harness user add --role ROLE NAME` and `harness user remove NAME`, run
 * with the owner's URLs: a login user in the role's group, and the URLs it
 * connects with as `KEY=URL` lines (`harness user add --role worker w1 > worker.env`).
 */

function ownerUrls(): OwnerUrls {
  const cfg = config();
  return { state: requireStateDatabase(cfg), data: requireDataDatabase(cfg) };
}

function nameArg(value: unknown, rest: readonly unknown[]): string {
  if (rest.length > 1) throw new UsageError(`expected one user name, got ${rest.length}`);
  const name = typeof value === "string" ? value : "";
  if (name === "") throw new UsageError("missing the user name");
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new UsageError(`user name ${JSON.stringify(name)} ${problem}`);
  return name;
}

function roleArg(value: unknown): UserRole {
  const role = USER_ROLES.find((r) => r === value);
  if (role === undefined)
    throw new UsageError(
      `--role must be one of ${USER_ROLES.join(", ")}, got ${String(value ?? "nothing")}`,
    );
  return role;
}

const add = harnessCommand({
  name: "user add",
  description:
    "Create a login user in a role's group (random password) and print the URLs it needs as KEY=URL lines",
  args: {
    role: { type: "string", description: `${USER_ROLES.join(" | ")}`, required: true },
    name: { type: "positional", description: "the user's name", required: false },
    redrive: {
      type: "boolean",
      description: "reader only: may also redrive dead letters (harness_redriver)",
      default: false,
    },
    rotate: {
      type: "boolean",
      description: "when the user exists, give it a new password instead of refusing",
      default: false,
    },
  },
  checks: { databases: ["state", "data"], schema: true, oneShot: true },
  async run({ args }) {
    const role = roleArg(args.role);
    const name = nameArg(args.name, args._);
    if (args.redrive && role !== "reader")
      throw new UsageError("--redrive goes with --role reader");
    const urls = await userAdd(ownerUrls(), {
      name,
      role,
      redrive: args.redrive,
      rotate: args.rotate,
    });
    for (const [key, url] of Object.entries(urls)) process.stdout.write(`${key}=${url}\n`);
  },
});

const remove = harnessCommand({
  name: "user remove",
  description: "Drop a harness user (ending its sessions where allowed)",
  args: { name: { type: "positional", description: "the user's name", required: false } },
  checks: { databases: ["state", "data"], schema: false, oneShot: true },
  async run({ args }) {
    const name = nameArg(args.name, args._);
    const r = await userRemove(ownerUrls(), name);
    if (!r.removed) throw new Error(`no user ${name}`);
    if (r.openSessions > 0)
      process.stderr.write(
        `harness user remove: ${r.openSessions} session(s) of ${name} stay open until they end (this user may not end them)\n`,
      );
    process.stdout.write(`removed user ${name}\n`);
  },
});

export default harnessCommand({
  name: "user",
  description: "Database users for the roles, each with only its role's privileges",
  args: {},
  subCommands: { add, remove },
});
