import { EnvSchema } from "../../config";
import { ExecSetupError } from "./errors";

/**
 * The environment a task program gets, built from nothing: the task's
 * identity, PATH, HOME (its own temporary folder) and the variables the user
 * named with `--exec-env`. Nothing of the worker's own configuration — no
 * database URL, no INTERNAL_AUTH_TOKEN, no store credentials, no capability
 * token — can be passed, even by name.
 */

export const TASK_ENV = ["HARNESS_TASK_ID", "HARNESS_ORG_ID", "HARNESS_ATTEMPT"] as const;

/** Where a program is looked up when the worker itself has no PATH. */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Harness variables not (yet) in the worker's own schema, refused all the same. */
const HARNESS_NAMES = new Set([
  "QUEUE_URL",
  "QUEUE_NAMESPACE",
  "UI_AUTH_TOKEN",
  "UI_PORT",
  "MAX_BATCHES_PER_ATTEMPT",
  "TASK_COMMAND",
  "TEST_DATABASE_URL",
]);

/**
 * Why `--exec-env` refuses a name, if it does: every variable harness reads
 * itself, the ones the wrapper sets, and the usual homes of credentials
 * harness may be given (libpq's PG*, S3 and AWS keys, any HARNESS_ variable).
 */
export function refusedName(name: string): string | undefined {
  if (!NAME.test(name)) return "is not a variable name";
  if (name === "PATH" || name === "HOME" || name.startsWith("HARNESS_"))
    return "is set by the wrapper itself";
  if (
    Object.hasOwn(EnvSchema.entries, name) ||
    HARNESS_NAMES.has(name) ||
    /^(PG|S3_|AWS_)/.test(name)
  )
    return "is worker configuration, never passed to task code";
  return undefined;
}

/** The values of the `--exec-env` names, read once at start from the worker's environment. */
export function passedEnv(
  names: readonly string[],
  from: Record<string, string | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const why = refusedName(name);
    if (why !== undefined) throw new ExecSetupError(`--exec-env ${name} ${why}`);
    const value = from[name];
    if (value === undefined) throw new ExecSetupError(`--exec-env ${name}: ${name} is not set`);
    out[name] = value;
  }
  return out;
}

export interface TaskIdentity {
  task_id: string;
  org_id: string;
  attempt: number;
}

export function childEnv(
  task: TaskIdentity,
  p: { path: string; home: string; passed: Record<string, string> },
): Record<string, string> {
  return {
    ...p.passed,
    PATH: p.path,
    HOME: p.home,
    HARNESS_TASK_ID: task.task_id,
    HARNESS_ORG_ID: task.org_id,
    HARNESS_ATTEMPT: String(task.attempt),
  };
}
