import { type Config, requireStateDatabase } from "./config";
import { describeUrl } from "./db/connect";
import { isMissingMigration, MISSING_SCHEMA } from "./db/errors";
import type { Logger } from "./log";

/**
 * When a role stops waiting for what it depends on (a database, the
 * dispatcher). A long-running role never does: it retries, and a supervisor
 * restarts it if need be. Under `--until-idle` a script waits on it, so it
 * gives up instead: once one dependency has stayed unavailable for
 * `--give-up-ms`, or at once when the schema is missing, `signal` aborts and
 * `reason` is the one-line error the command ends with.
 *
 * Callers report each failure (`down`) and each success (`up`). Given a
 * logger, these log too, the same way everywhere: the first failure of an
 * outage and every tenth at error (a missing schema says so), the others at
 * debug, and the end of an outage at info.
 */

export interface Dependency {
  /** What it is, as a sentence starts: "the dispatcher", "the state database". */
  name: string;
  /** Where, as an operator would look for it: a URL, a host, and the variable that sets it. */
  where: string;
}

/** Where a role's queue lives, as logs and the give-up line name it (no credentials). */
export function queueDependency(cfg: Config, queue: string): Dependency {
  if (cfg.queue.url !== undefined) return { name: queue, where: "QUEUE_URL" };
  return { name: "the state database", where: describeUrl(requireStateDatabase(cfg)) };
}

/** Where `down` and `up` log, and the message of a failure (`msg`) and of the end of an outage (`back`). */
export interface OutageLog {
  log: Logger;
  msg: string;
  back: string;
}

export interface Outage {
  /** Failures in a row so far, this one included. */
  failures: number;
  /** Since when (epoch ms) the dependency has been unavailable. */
  since: number;
}

export class GiveUp {
  readonly #abort = new AbortController();
  readonly #down = new Map<string, Outage>();
  readonly #limitMs: number | undefined;

  /** `limitMs` undefined: never give up (a long-running role). */
  constructor(limitMs: number | undefined) {
    this.#limitMs = limitMs;
  }

  /** Aborts once the role has given up. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Why the role gave up: the error its command ends with. */
  get reason(): Error | undefined {
    const r: unknown = this.#abort.signal.reason;
    return this.#abort.signal.aborted && r instanceof Error ? r : undefined;
  }

  /** The dependency answered; the outage it ends, if there was one. */
  up(dep: Dependency, l?: OutageLog): Outage | undefined {
    const outage = this.#down.get(dep.name);
    this.#down.delete(dep.name);
    if (outage !== undefined && l !== undefined) {
      const down_ms = Date.now() - outage.since;
      l.log.info(l.back, { dependency: dep.name, failures: outage.failures, down_ms });
    }
    return outage;
  }

  /** The dependency failed with `err`; gives up when it has been down too long or the schema is missing. */
  down(dep: Dependency, err: unknown, l?: OutageLog, now = Date.now()): Outage {
    const outage = this.#down.get(dep.name) ?? { failures: 0, since: now };
    outage.failures += 1;
    this.#down.set(dep.name, outage);
    if (l !== undefined) {
      const level = loudly(outage) ? "error" : "debug";
      const msg = isMissingMigration(err) ? MISSING_SCHEMA : l.msg;
      const fields = { dependency: dep.name, where: dep.where, failures: outage.failures };
      l.log[level](msg, { ...fields, down_ms: now - outage.since, err });
    }
    if (this.#limitMs === undefined || this.#abort.signal.aborted) return outage;
    if (isMissingMigration(err)) {
      this.#abort.abort(
        new Error(`${MISSING_SCHEMA} (${dep.name} at ${dep.where})`, { cause: err }),
      );
    } else if (now - outage.since >= this.#limitMs) {
      const seconds = Math.round((now - outage.since) / 100) / 10;
      const why = `${dep.name} at ${dep.where} stayed unavailable for ${seconds} s (--give-up-ms ${this.#limitMs})`;
      this.#abort.abort(new Error(why, { cause: err }));
    }
    return outage;
  }

  /** Gives up now (under `--until-idle`) for a reason of the role's own. */
  stop(reason: Error): void {
    if (this.#limitMs !== undefined && !this.#abort.signal.aborted) this.#abort.abort(reason);
  }
}

/** Log the first failure of an outage and every tenth loudly, the others at debug. */
const loudly = (o: Outage): boolean => o.failures === 1 || o.failures % 10 === 0;
