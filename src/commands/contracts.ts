import { resolve } from "node:path";
import { ContractsDriftError, checkContracts, exportContracts } from "../contracts/freeze";
import { harnessCommand } from "./_command";

const exportCommand = harnessCommand({
  name: "contracts export",
  description: "Write every wire contract as JSON Schema draft 2020-12, plus index.json",
  args: {
    out: { type: "string", description: "folder to write into", default: "contracts" },
    docs: {
      type: "string",
      description:
        "also fill the generated tables of this Markdown file (docs/architecture/contracts.md)",
    },
    check: {
      type: "boolean",
      description: "write nothing; fail if the folder (and --docs) differ from a fresh export",
    },
  },
  async run({ args }) {
    const out = resolve(String(args.out));
    const docs = typeof args.docs === "string" && args.docs !== "" ? resolve(args.docs) : undefined;
    const options = docs === undefined ? { out } : { out, docs };
    if (args.check) {
      const problems = await checkContracts(options);
      if (problems.length > 0) throw new ContractsDriftError(problems.join("\n"));
      process.stdout.write(`contracts in ${out} are up to date\n`);
      return;
    }
    const { written, removed } = await exportContracts(options);
    process.stdout.write(`wrote ${written.length} files to ${out}\n`);
    for (const file of removed)
      process.stdout.write(`removed ${file} (no such contract any more)\n`);
    if (docs !== undefined) process.stdout.write(`updated the generated tables of ${docs}\n`);
  },
});

export default harnessCommand({
  name: "contracts",
  description: "The frozen wire contracts; their JSON Schema copies live in contracts/",
  args: {},
  subCommands: { export: exportCommand },
});
