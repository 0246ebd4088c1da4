import * as v from "valibot";
import { config, requireStateDatabase } from "../config";
import { OrgId } from "../contracts/common";
import { TaskPayload } from "../contracts/task";
import { connect } from "../db/connect";
import { createTasks } from "../tasks/create";
import { harnessCommand, intFlag, UsageError } from "./_command";

type Flags = {
  alerts?: string;
  "work-ms"?: string;
  workMs?: string;
  payload?: string;
};

const oneLine = (issues: Parameters<typeof v.summarize>[0]) =>
  v.summarize(issues).replace(/\s*\n\s*/g, " ");

function payloadOf(args: Flags): TaskPayload {
  const workMs = args["work-ms"] ?? args.workMs;
  let raw: unknown;
  if (args.payload !== undefined) {
    if (args.alerts !== undefined || workMs !== undefined) {
      throw new UsageError("--payload excludes --alerts and --work-ms");
    }
    try {
      raw = JSON.parse(args.payload);
    } catch {
      throw new UsageError("--payload is not JSON");
    }
  } else {
    if (args.alerts === undefined) throw new UsageError("give --alerts N or --payload JSON");
    raw = {
      alerts: intFlag("alerts", args.alerts, 0, 100_000),
      ...(workMs === undefined ? {} : { work_ms: intFlag("work-ms", workMs, 0, 3_600_000) }),
    };
  }
  const r = v.safeParse(TaskPayload, raw);
  if (!r.success) throw new UsageError(`the task payload is invalid: ${oneLine(r.issues)}`);
  return r.output;
}

const create = harnessCommand({
  name: "task create",
  description: "Create tasks and their wakeups (one transaction); prints one task id per line",
  args: {
    org: { type: "string", description: "the tasks' org id", required: true },
    alerts: { type: "string", description: "N deterministic alerts per task" },
    "work-ms": { type: "string", description: "minimum work time per task, heartbeating" },
    count: { type: "string", description: "how many tasks (default 1)" },
    payload: {
      type: "string",
      valueHint: "json",
      description:
        "a whole task payload as JSON instead: any object up to 64 KiB for `worker --exec`; the default worker needs {alerts, work_ms?}",
    },
  },
  checks: { databases: ["state"], schema: true, oneShot: true },
  async run({ args }) {
    const org = v.safeParse(OrgId, args.org);
    if (!org.success) throw new UsageError(`--org ${oneLine(org.issues)}`);
    const payload = payloadOf(args);
    const count = args.count === undefined ? 1 : intFlag("count", args.count, 1, 100_000);
    const sql = connect(requireStateDatabase(config()), { name: "task-create", max: 1 });
    try {
      const ids = await createTasks(sql, { orgId: org.output, payload, count });
      process.stdout.write(`${ids.join("\n")}\n`);
    } finally {
      await sql.end({ timeout: 5 });
    }
  },
});

export default harnessCommand({
  name: "task",
  description: "Manage tasks",
  args: {},
  subCommands: { create },
});
