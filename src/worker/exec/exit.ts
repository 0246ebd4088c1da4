import { constants } from "node:os";
import type { ExitStatus } from "./child";

/**
 * A failed program's exit, in words, for the attempt's failure reason. In
 * the namespace fence the program's signal reaches us as the init shell's
 * exit code 128 + N, so such codes are named as signals too.
 */

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n, name]),
);

const HINTS: Record<string, string> = {
  SIGXCPU: " (over --exec-cpu-seconds)",
  SIGKILL: " (by the --exec-cpu-seconds hard limit, the OOM killer, or someone else)",
};

function bySignal(name: string): string {
  return `killed by ${name}${HINTS[name] ?? ""}`;
}

export function describeExit(status: ExitStatus, stderrTail: string | undefined): string {
  let what: string;
  if (status.signal !== null) what = `the program was ${bySignal(status.signal)}`;
  else if (status.code === 127) what = "exit 127: command not found";
  else if (status.code === 126) what = "exit 126: command not executable";
  else {
    const code = status.code ?? -1;
    const signal = code > 128 ? SIGNAL_NAMES.get(code - 128) : undefined;
    what = `the program exited with code ${code}${signal === undefined ? "" : ` (${bySignal(signal)})`}`;
  }
  if (stderrTail === undefined) return what;
  const tail = stderrTail.length > 300 ? `${stderrTail.slice(0, 300)}…` : stderrTail;
  return `${what}; its last stderr line: ${JSON.stringify(tail)}`;
}
