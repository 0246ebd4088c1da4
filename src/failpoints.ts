import { createLogger } from "./log";

/**
 * Failpoints: named places where a process can be made to die at an exact
 * moment, to prove that nothing is lost when it does. Off unless set.
 *
 *   HARNESS_FAILPOINTS="worker.after_publish,sink.after_commit:3"
 *
 * Each entry is `name` (fires on the first hit) or `name:N` (fires on the
 * N-th hit). Firing logs one line and kills the process with SIGKILL, the
 * same as `kill -9` from outside: no cleanup, no flush, no exit handlers.
 *
 * Known points (grep `failpoint("` for the live list):
 *   dispatcher.after_outbox_commit  a task API call committed its outbox row, before any publish
 *   dispatcher.after_drain_publish  the drainer published a batch, before committing its sent mark
 *   worker.after_claim              a claim succeeded, before any work
 *   worker.after_write              the batch is in the object store, before buffer-publish
 *   worker.after_publish            buffer-publish answered 202, before complete (--exec)
 *   worker.after_complete           complete (carrying the batch) answered 200, before the
 *                                   wakeup is acked (the default worker)
 *   sink.after_commit               rows committed, before the message is acked
 *
 * Switches are failpoints that do not kill: while named, they take a guard
 * away, so a test can show that the test fails without it (`failswitch`):
 *   dispatcher.unfenced_heartbeat   a heartbeat renews the lease without its fence
 *   db.no_reconnect                 a pool that lost a connection to an error never opens another
 */

const log = createLogger("failpoints");
/** Log messages tests wait for. */
export const FAILPOINT_LOG = { armed: "failpoints armed", fired: "failpoint fired" } as const;
let armed: Map<string, number> | undefined;
const hits = new Map<string, number>();

export function parseFailpoints(spec: string | undefined): Map<string, number> {
  const points = new Map<string, number>();
  for (const raw of (spec ?? "").split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const match = /^([a-z_]+\.[a-z_]+)(?::(\d+))?$/.exec(entry);
    if (match === null || match[1] === undefined) {
      throw new Error(`HARNESS_FAILPOINTS entry ${JSON.stringify(entry)} is not name or name:N`);
    }
    points.set(match[1], match[2] === undefined ? 1 : Number(match[2]));
  }
  return points;
}

/** Arms the failpoints of this process; call once at start with the config's value. */
export function armFailpoints(spec: string | undefined): void {
  armed = parseFailpoints(spec);
  if (armed.size > 0) log.warn(FAILPOINT_LOG.armed, { failpoints: [...armed.keys()] });
}

/** Dies here, like kill -9, when this point is armed and its hit count is reached. */
export function failpoint(name: string): void {
  if (armed === undefined || armed.size === 0) return;
  const target = armed.get(name);
  if (target === undefined) return;
  const hit = (hits.get(name) ?? 0) + 1;
  hits.set(name, hit);
  if (hit < target) return;
  log.warn(FAILPOINT_LOG.fired, { failpoint: name, hit });
  process.kill(process.pid, "SIGKILL");
}

/** True while the switch `name` is armed: the guard it names is off (tests only). */
export function failswitch(name: string): boolean {
  return armed?.has(name) ?? false;
}
