import { resolve } from "node:path";
import { config, requireDataDatabase, requireStateDatabase } from "../config";
import { formatReport } from "../verify/report";
import { runVerify } from "../verify/run";
import { harnessCommand, intFlag } from "./_command";

export default harnessCommand({
  name: "verify",
  description:
    "Run a pipeline (optionally under a seeded fault schedule) against the configured databases and check every invariant",
  args: {
    tasks: { type: "string", description: "tasks to create", default: "50" },
    alerts: { type: "string", description: "alerts per task", default: "10" },
    "work-ms": {
      type: "string",
      description: "each task works at least this long (default 0, or 200 with --chaos)",
    },
    workers: { type: "string", description: "worker processes", default: "2" },
    exec: {
      type: "string",
      description:
        "the workers run this task program (positional arguments are its ARGS) for every attempt, e.g. examples/synthetic.sh",
    },
    chaos: { type: "string", description: "seed of a random fault schedule (kill -9, duplicates)" },
    timeout: {
      type: "string",
      description: "seconds to wait for the pipeline to go quiet",
      default: "180",
    },
    logs: { type: "string", description: "folder for the roles' logs (default: a temp folder)" },
    json: { type: "boolean", description: "print the report as JSON", default: false },
  },
  checks: { databases: ["state", "data"], schema: true, oneShot: true },
  async run({ args }) {
    const cfg = config();
    // The workers run elsewhere: a relative program path is made absolute here.
    const exec =
      args.exec === undefined
        ? undefined
        : [args.exec.includes("/") ? resolve(args.exec) : args.exec, ...args._];
    const urls = { state: requireStateDatabase(cfg), data: requireDataDatabase(cfg) };
    const report = await runVerify(cfg, urls, {
      tasks: intFlag("tasks", args.tasks, 1, 100_000),
      alerts: intFlag("alerts", args.alerts, 0, 100_000),
      workMs: intFlag(
        "work-ms",
        args["work-ms"] ?? (args.chaos === undefined ? "0" : "200"),
        0,
        3_600_000,
      ),
      workers: intFlag("workers", args.workers, 1, 64),
      exec,
      chaos: args.chaos === undefined ? undefined : intFlag("chaos", args.chaos, 0, 2 ** 31),
      timeoutMs: intFlag("timeout", args.timeout, 1, 86_400) * 1000,
      logDir: args.logs,
    });
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    if (!report.check.ok || report.timedOut) process.exit(1);
  },
});
