import { resolve } from "node:path";
import * as v from "valibot";
import { type Config, config, requireDataDatabase, requireStateDatabase } from "../config";
import { checkDatabase } from "../db/preflight";
import { describeError } from "../describe-error";
import { EmbeddedUnavailableError } from "../platform/embedded";
import { ChaosEvent, FAULT_KINDS, type FaultKind, parseFaultKinds } from "../verify/chaos";
import { formatReport } from "../verify/report";
import { runVerify } from "../verify/run";
import { harnessCommand, intFlag, UsageError } from "./_command";

/** `--duration 10m`, `90s`, `1h`, or plain seconds. */
export function durationFlag(name: string, value: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(value.trim());
  if (match?.[1] === undefined)
    throw new UsageError(
      `--${name} must be a duration like 90s, 10m or 1h, got ${JSON.stringify(value)}`,
    );
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] ?? 1_000;
  const ms = Number(match[1]) * unit;
  if (ms < 1_000 || ms > 7 * 86_400_000)
    throw new UsageError(`--${name} must be between 1s and 7 days`);
  return ms;
}

/** The servers of verify's own, which only they may restart or kill. */
interface Own {
  embedded: boolean;
  natsCluster: boolean;
}

function faultKinds(text: string | undefined, own: Own): FaultKind[] {
  if (text === undefined)
    return FAULT_KINDS.filter(
      (k) => (k !== "postgres-restart" || own.embedded) && (k !== "broker-kill" || own.natsCluster),
    );
  let kinds: FaultKind[];
  try {
    kinds = parseFaultKinds(text);
  } catch (err) {
    throw new UsageError(`--faults: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (kinds.includes("postgres-restart") && !own.embedded)
    throw new UsageError(
      "--faults postgres-restart needs --embedded (verify restarts only its own PostgreSQL)",
    );
  if (kinds.includes("broker-kill") && !own.natsCluster)
    throw new UsageError(
      "--faults broker-kill needs --nats-cluster (verify kills only its own broker nodes)",
    );
  return kinds;
}

async function checkedDatabases(cfg: Config): Promise<{ state: string; data: string }> {
  const urls = { state: requireStateDatabase(cfg), data: requireDataDatabase(cfg) };
  for (const kind of ["state", "data"] as const)
    await checkDatabase(urls[kind], kind, { schema: true, timeoutMs: 3_000 });
  return urls;
}

async function scheduleFile(path: string): Promise<ChaosEvent[]> {
  let json: unknown;
  try {
    json = await Bun.file(path).json();
  } catch (cause) {
    throw new UsageError(`--schedule: cannot read ${path} as JSON: ${describeError(cause)}`);
  }
  const parsed = v.safeParse(v.array(ChaosEvent), json);
  if (!parsed.success) throw new UsageError(`--schedule ${path}: ${v.summarize(parsed.issues)}`);
  return parsed.output;
}

export default harnessCommand({
  name: "verify",
  description:
    "Run a pipeline (optionally under a seeded fault schedule) and check every invariant",
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
    chaos: { type: "string", description: "seed of a random fault schedule" },
    faults: {
      type: "string",
      description: `fault kinds to draw from: ${FAULT_KINDS.join(",")} (default: every kind that applies)`,
    },
    embedded: {
      type: "boolean",
      description:
        "run on verify's own embedded PostgreSQL (no URL needed; the schedule may restart it)",
      default: false,
    },
    "nats-cluster": {
      type: "boolean",
      description:
        "the queues on three nats-server processes of verify's own (loopback, routes, R3 streams); the schedule may kill -9 a node",
      default: false,
    },
    duration: {
      type: "string",
      description:
        "a soak: create tasks at a steady rate for this long (e.g. 10m), with faults throughout",
    },
    rate: { type: "string", description: "tasks created per second in a soak", default: "5" },
    timeout: {
      type: "string",
      description: "seconds to wait for the pipeline to go quiet (after a soak's duration)",
      default: "180",
    },
    schedule: {
      type: "string",
      description:
        "replay these fault events (a JSON array, as in a --json report's events) instead of a seeded schedule",
    },
    logs: { type: "string", description: "folder for the roles' logs (default: a temp folder)" },
    json: { type: "boolean", description: "print the report as JSON", default: false },
  },
  async run({ args }) {
    const cfg = config();
    const embedded = args.embedded === true;
    const natsCluster = args["nats-cluster"] === true;
    const faults = faultKinds(args.faults, { embedded, natsCluster });
    // Its own PostgreSQL needs no check; the configured databases must be there and migrated.
    const urls = embedded ? undefined : await checkedDatabases(cfg);
    // The workers run elsewhere: a relative program path is made absolute here.
    const exec =
      args.exec === undefined
        ? undefined
        : [args.exec.includes("/") ? resolve(args.exec) : args.exec, ...args._];
    if (args.faults !== undefined && args.chaos === undefined && args.schedule === undefined)
      throw new UsageError("--faults needs --chaos SEED");
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
      faults,
      embedded,
      natsCluster,
      durationMs: args.duration === undefined ? undefined : durationFlag("duration", args.duration),
      rate: intFlag("rate", args.rate, 1, 10_000),
      timeoutMs: intFlag("timeout", args.timeout, 1, 86_400) * 1000,
      logDir: args.logs,
      schedule: args.schedule === undefined ? undefined : await scheduleFile(args.schedule),
    }).catch((err: unknown) => {
      if (err instanceof EmbeddedUnavailableError) throw new UsageError(err.message);
      throw err;
    });
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    if (!report.check.ok || report.timedOut) process.exit(1);
  },
});
