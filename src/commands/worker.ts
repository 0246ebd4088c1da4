import { config } from "../config";
import { createLogger } from "../log";
import { warnExcessPrivilege } from "../users/excess";
import { ExecSetupError } from "../worker/exec/setup";
import { WORKER_LOG } from "../worker/logs";
import { runWorker } from "../worker/main";
import { harnessCommand, intFlag, UsageError } from "./_command";
import { execSettingsFrom } from "./_exec-flags";
import { giveUpArg, giveUpFlag } from "./_give-up";

export default harnessCommand({
  name: "worker",
  description:
    "Poll task_wakeup: claim each task, write its batch (or run --exec CMD [ARGS…] for it), buffer-publish, complete (heartbeating meanwhile), then ack",
  args: {
    concurrency: { type: "string", description: "tasks worked at once", default: "1" },
    "until-idle": {
      type: "boolean",
      description:
        "exit 0 once the pipeline is done for --idle-ms: task_wakeup empty, nothing in flight, no outbox row pending, no task queued or running (asks the dispatcher)",
      default: false,
    },
    "idle-ms": { type: "string", description: "how long done counts as idle", default: "1000" },
    "give-up-ms": giveUpArg,
    "grace-ms": {
      type: "string",
      description:
        "on SIGTERM/SIGINT, how long in-flight tasks get to finish; with --exec, also how long a stopped program gets between SIGTERM and SIGKILL",
      default: "10000",
    },
    exec: {
      type: "string",
      description:
        "run this program for each attempt (the positional arguments are its ARGS; env TASK_COMMAND): payload on stdin, alert lines on stdout",
    },
    "task-timeout": {
      type: "string",
      description:
        "with --exec: a program running longer is stopped and its attempt fails (e.g. 30s, 10m; default 1h)",
    },
    "exec-env": {
      type: "string",
      description:
        "with --exec: pass this variable of the worker's environment on to the program (repeatable)",
    },
    "exec-memory": {
      type: "string",
      description: "with --exec: the program's address-space limit (RLIMIT_AS), e.g. 512M",
    },
    "exec-cpu-seconds": {
      type: "string",
      description: "with --exec: the program's CPU-time limit (RLIMIT_CPU)",
    },
    "exec-user": {
      type: "string",
      description: "with --exec: run the program as this user (the worker must run as root)",
    },
    "exec-no-network": {
      type: "boolean",
      description: "with --exec: the program gets no network at all (unshare --net)",
      default: false,
    },
  },
  checks: { databases: ["queue"], schema: true, oneShot: false },
  async run({ args, rawArgs }) {
    const concurrency = intFlag("concurrency", args.concurrency, 1, 256);
    const idleMs = intFlag("idle-ms", args["idle-ms"], 0, 3_600_000);
    const graceMs = intFlag("grace-ms", args["grace-ms"], 0, 3_600_000);
    const exec = execSettingsFrom(
      {
        exec: args.exec,
        positionals: args._,
        rawArgs,
        taskTimeout: args["task-timeout"],
        graceMs,
        execMemory: args["exec-memory"],
        execCpuSeconds: args["exec-cpu-seconds"],
        execUser: args["exec-user"],
        execNoNetwork: args["exec-no-network"],
      },
      process.env,
    );
    const giveUpMs = giveUpFlag(args["give-up-ms"], args["until-idle"]);
    const log = createLogger("worker", { pid: process.pid });
    const stop = new AbortController();
    const abandon = new AbortController();
    const onSignal = (signal: string) => {
      if (!stop.signal.aborted) {
        log.info(WORKER_LOG.stopping, { signal });
        stop.abort();
      } else {
        log.warn(WORKER_LOG.abandoning, { signal });
        abandon.abort();
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    await warnExcessPrivilege("worker", config(), process.env, log);
    const stats = await runWorker(
      config(),
      {
        concurrency,
        untilIdle: args["until-idle"] ? { idleMs, giveUpMs } : undefined,
        graceMs,
        exec,
      },
      { stop: stop.signal, abandon: abandon.signal },
    ).catch((err: unknown) => {
      // The machine or the user cannot honour an --exec setting: one line, exit 2.
      throw err instanceof ExecSetupError ? new UsageError(err.message) : err;
    });
    const summary = stats.summary();
    process.stdout.write(
      `worker: ${summary.succeeded} tasks succeeded, ${summary.alerts} alerts, ` +
        `${summary.wakeups} wakeups in ${summary.seconds} s (${summary.tasks_per_second} tasks/s)\n`,
    );
  },
});
