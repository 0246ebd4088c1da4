import type { Logger } from "../log";
import { sleep } from "../sleep";
import type { DispatcherClient, LeaseIdentity, Reply } from "./client";
import { WORKER_LOG } from "./logs";

/**
 * Keeps a lease alive while a task works: one heartbeat every `intervalMs`
 * (a fraction of the lease), one at a time. A refusal (409 stale_lease, or
 * 401/403 once the capability is no longer good) means this attempt is fenced
 * out: `onFenced` fires once and the loop ends.
 */

export interface HeartbeatOptions {
  client: DispatcherClient;
  lease: LeaseIdentity;
  intervalMs: number;
  /** Ends the heartbeats too (the task was fenced out or abandoned). */
  signal: AbortSignal;
  log: Logger;
  /** Called with the time a heartbeat was sent and the new expiry it was granted. */
  onRenewed(sentAt: number, expiresAt: Date): void;
  onFenced(refusal: Extract<Reply<unknown>, { ok: false }>): void;
}

export interface Heartbeat {
  /** Ends the heartbeats and waits for one in flight to settle. */
  stop(): Promise<void>;
}

export function startHeartbeat(opts: HeartbeatOptions): Heartbeat {
  let beating: { stopper: AbortController; loop: Promise<void> } | undefined;
  // Most attempts end before their first heartbeat is due: until then a timer is all they cost.
  const due = setTimeout(() => {
    const stopper = new AbortController();
    const loop = beatEvery(opts, AbortSignal.any([stopper.signal, opts.signal]));
    beating = { stopper, loop };
  }, opts.intervalMs);
  return {
    async stop() {
      clearTimeout(due);
      if (beating === undefined) return;
      beating.stopper.abort();
      await beating.loop;
    },
  };
}

/** Beats now and then every `intervalMs`, until the signal aborts or the lease is lost. */
async function beatEvery(opts: HeartbeatOptions, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    if (!(await beat(opts, signal))) return;
    await sleep(opts.intervalMs, signal);
  }
}

/** One heartbeat; false once the lease is lost. */
async function beat(opts: HeartbeatOptions, signal: AbortSignal): Promise<boolean> {
  const sentAt = Date.now();
  try {
    const reply = await opts.client.heartbeat(opts.lease, signal);
    if (reply.ok) {
      opts.onRenewed(sentAt, new Date(reply.body.lease_expires_at));
      return true;
    }
    opts.log.warn(WORKER_LOG.heartbeatRefused, { status: reply.status, code: reply.error });
    opts.onFenced(reply);
    return false;
  } catch (err) {
    if (signal.aborted) return false;
    // A contract breach by the dispatcher: keep trying; the lease decides.
    opts.log.error("heartbeat failed", { err });
    return true;
  }
}
