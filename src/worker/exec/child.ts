import type { Logger } from "../../log";
import { sleep } from "../../sleep";
import { LineSplitter } from "./lines";

/**
 * One running task program: spawned in a session of its own (so its
 * process group is the program and everything it starts), the payload on
 * stdin, stdout for the caller, stderr line by line into the worker's log.
 * Stopping it is SIGTERM to the whole group, then SIGKILL after a grace
 * period.
 */

/** Logged for each line the program writes on stderr (with task_id and attempt). */
export const CHILD_STDERR = "task stderr";
/** Logged once when a program wrote more stderr lines than are logged. */
export const CHILD_STDERR_CUT = "task stderr: further lines not logged";

export const MAX_STDERR_LINES = 1000;
const MAX_STDERR_LINE_BYTES = 4096;

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

export interface Child {
  /** Also the process group id. */
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly exited: Promise<ExitStatus>;
  /** Resolves once stderr reached its end (after the program and its children closed it). */
  readonly stderrDone: Promise<void>;
  /** The last line the program wrote on stderr, for a failure's reason. */
  stderrTail(): string | undefined;
  /** SIGTERM to the group, SIGKILL after `graceMs` unless the program ended; resolves once it did. */
  stop(graceMs: number): Promise<void>;
  /** SIGKILL to whatever is left in the group. */
  killGroup(): void;
}

export interface ChildOptions {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  stdin: Uint8Array;
  log: Logger;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nobody left in the group.
  }
}

function signalName(signal: NodeJS.Signals | number | null): string | null {
  if (signal === null || typeof signal === "string") return signal;
  return `signal ${signal}`;
}

export function startChild(o: ChildOptions): Child {
  const proc = Bun.spawn(o.argv, {
    cwd: o.cwd,
    env: o.env,
    detached: true,
    stdin: o.stdin,
    stdout: "pipe",
    stderr: "pipe",
  });
  const pid = proc.pid;
  let tail: string | undefined;
  const stderrDone = pumpStderr(proc.stderr, o.log, (line) => {
    tail = line;
  });
  const exited = proc.exited.then(
    (): ExitStatus => ({ code: proc.exitCode, signal: signalName(proc.signalCode) }),
  );
  let stopping: Promise<void> | undefined;
  return {
    pid,
    stdout: proc.stdout,
    exited,
    stderrDone,
    stderrTail: () => tail,
    stop(graceMs) {
      stopping ??= (async () => {
        signalGroup(pid, "SIGTERM");
        const over = new AbortController();
        const ended = exited.then(() => over.abort());
        await Promise.race([ended, sleep(graceMs, over.signal)]);
        if (!over.signal.aborted) signalGroup(pid, "SIGKILL");
        await exited;
        over.abort();
      })();
      return stopping;
    },
    killGroup: () => signalGroup(pid, "SIGKILL"),
  };
}

async function pumpStderr(
  stream: ReadableStream<Uint8Array>,
  log: Logger,
  onLine: (line: string) => void,
): Promise<void> {
  const splitter = new LineSplitter(MAX_STDERR_LINE_BYTES);
  const decoder = new TextDecoder();
  let seen = 0;
  const take = (bytes: Uint8Array, overlong: boolean): boolean => {
    const line = decoder.decode(bytes) + (overlong ? "…" : "");
    if (line.trim() !== "") onLine(line);
    seen += 1;
    if (seen <= MAX_STDERR_LINES) log.info(CHILD_STDERR, { line });
    else if (seen === MAX_STDERR_LINES + 1) log.warn(CHILD_STDERR_CUT, { after: MAX_STDERR_LINES });
    return true;
  };
  try {
    for await (const chunk of stream) splitter.push(chunk, take);
    splitter.end(take);
  } catch (err) {
    log.warn("reading the program's stderr failed", { err });
  }
}
