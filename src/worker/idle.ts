import type { BacklogResponse } from "../contracts/http";
import type { Depth } from "../queue/seam";
import type { WorkerContext } from "./context";
import { WORKER_LOG } from "./logs";

/**
 * `worker --until-idle` ends when the pipeline is done, not only its queue:
 * no wakeup ready, hidden or delayed, none in flight here, and the
 * dispatcher's backlog all zeros — no outbox row to publish (a task created
 * while no dispatcher ran), no task `queued` (a retry waiting for its backoff
 * included: it is work still to come) or `running` (elsewhere) — for
 * `idleMs` on end. The worker may not read the tables: it asks the
 * dispatcher (`GET /internal/backlog`).
 *
 * Queued tasks that nothing can wake any more (no wakeup anywhere in the
 * queue, none in the outbox, nothing running: their wakeups were
 * dead-lettered) would be waited for forever: once that has lasted the
 * give-up limit, the worker gives up with a line saying so.
 */

type Pipeline = "busy" | "quiet" | "stalled";

function pipelineOf(d: Depth, b: BacklogResponse): Pipeline {
  const messages = d.ready + d.inFlight + d.delayed;
  const live = messages + b.outbox_pending + b.tasks_running;
  if (live + b.tasks_queued === 0) return "quiet";
  return live === 0 ? "stalled" : "busy";
}

export class IdleWatch {
  #quietSince: number | undefined;
  #stalledSince: number | undefined;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly idleMs: number,
    private readonly giveUpMs: number,
  ) {}

  /** A wakeup came in or a task ended: the quiet starts over. */
  busy(): void {
    this.#quietSince = undefined;
  }

  /** How long the loop may wait before looking again (at most `pollMs`). */
  waitMs(pollMs: number): number {
    if (this.#quietSince === undefined) return pollMs;
    return Math.max(10, Math.min(pollMs, this.#quietSince + this.idleMs - Date.now()));
  }

  /**
   * With nothing received and nothing in flight: true once the pipeline has
   * been quiet for `idleMs`. An unavailable dispatcher or queue is reported
   * to the worker's GiveUp (the backlog call retries until `signal` aborts).
   */
  async done(signal: AbortSignal): Promise<boolean> {
    const seen = await this.look(signal);
    const now = Date.now();
    if (seen?.state !== "stalled") this.#stalledSince = undefined;
    if (seen?.state !== "quiet") this.#quietSince = undefined;
    if (seen?.state === "stalled") {
      this.#stalledSince ??= now;
      if (now - this.#stalledSince >= this.giveUpMs) {
        const why = `${seen.queued} task(s) stayed queued for ${this.giveUpMs} ms with no wakeup left to claim them (dead-lettered? see harness dlq list)`;
        this.ctx.giveUp.stop(new Error(why));
      }
    }
    if (seen?.state !== "quiet") return false;
    this.#quietSince ??= now;
    return now - this.#quietSince >= this.idleMs;
  }

  /** The backlog first, then the queue: a wakeup published in between is then seen in the queue. */
  private async look(
    signal: AbortSignal,
  ): Promise<{ state: Pipeline; queued: number } | undefined> {
    const backlog = await this.backlog(signal);
    if (backlog === undefined) return undefined;
    const { giveUp, queue, log } = this.ctx;
    let depth: Depth;
    try {
      depth = await queue.depth();
    } catch (err) {
      const l = { log, msg: WORKER_LOG.queueUnavailable, back: WORKER_LOG.queueBack };
      giveUp.down(this.ctx.queueAt, err, l);
      return undefined;
    }
    const state = pipelineOf(depth, backlog);
    log.debug(WORKER_LOG.pipeline, { state, ...depth, ...backlog });
    return { state, queued: backlog.tasks_queued };
  }

  /** The dispatcher's backlog; undefined when it could not be had (reported to GiveUp). */
  private async backlog(signal: AbortSignal): Promise<BacklogResponse | undefined> {
    const { client, giveUp } = this.ctx;
    try {
      const reply = await client.backlog(signal);
      if (reply.ok) return reply.body;
      const err = new Error(
        `GET /internal/backlog at ${client.dependency.where} refused: ${reply.status} ${reply.error}: ${reply.message}`,
      );
      // No such endpoint (an older dispatcher) or a wrong token: waiting changes nothing.
      if (reply.status < 500) giveUp.stop(err);
      else giveUp.down(client.dependency, err);
    } catch (err) {
      // Aborted (stopping, or given up already), or an answer that breaks its contract.
      if (!signal.aborted && err instanceof Error) giveUp.stop(err);
    }
    return undefined;
  }
}
