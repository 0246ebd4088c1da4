import * as v from "valibot";
import { CAPABILITY_HEADER } from "../contracts/capability";
import {
  BacklogResponse,
  BufferPublishResponse,
  ClaimResponse,
  CompleteResponse,
  ErrorBody,
  FailResponse,
  HeartbeatResponse,
} from "../contracts/http";
import type { Dependency, GiveUp } from "../give-up";
import type { Logger } from "../log";
import { sleep } from "../sleep";
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff";
import { WORKER_LOG } from "./logs";

/**
 * The worker's side of the dispatcher's HTTP API. Every response is parsed
 * with its contract. Network errors, timeouts, 429 and 5xx are retried with
 * capped exponential backoff and jitter until the caller's signal aborts;
 * any other answer is returned as it is, for the caller to act on. Each
 * failure and each answer is reported to the worker's GiveUp, which decides
 * when the dispatcher has been away too long.
 */

/** A claim as the dispatcher answers it; the payload is checked separately (a bad one is dead-lettered). */
export const ClaimEnvelope = v.strictObject({ ...ClaimResponse.entries, payload: v.unknown() });
export type ClaimEnvelope = v.InferOutput<typeof ClaimEnvelope>;

/** What every task call carries: the fence and the capability that authorises it. */
export interface LeaseIdentity {
  task_id: string;
  attempt: number;
  lease_token: string;
  capability_token: string;
}

/** A written batch, as buffer-publish and complete carry it. */
export interface BatchBody {
  batch_uri: string;
  content_type: string;
  batch_size_bytes: number;
}

export type Reply<T> =
  | { ok: true; status: number; body: T }
  | {
      ok: false;
      status: number;
      error: string;
      message: string;
      /** The answer's `Retry-After` (delta-seconds), in ms, when it has one. */
      retryAfterMs?: number;
    };

/** The caller's signal aborted before an answer came. */
export class RequestAbortedError extends Error {
  override name = "RequestAbortedError";
}

/** The dispatcher answered 2xx with a body that breaks the contract. */
export class DispatcherContractError extends Error {
  override name = "DispatcherContractError";
}

export interface DispatcherClientOptions {
  baseUrl: string;
  internalToken: string;
  log: Logger;
  backoff?: BackoffPolicy;
  /** One request's deadline; a dispatcher that does not answer in time is retried. */
  requestTimeoutMs?: number;
  /**
   * Retries of an answer that looks like a bug rather than an outage (500, 501,
   * 505…): past this many the refusal is returned, so one poison request cannot
   * hold a worker forever. 502/503/504, 408, 429 and network errors retry until aborted.
   */
  maxServerErrorRetries?: number;
  /** Told of every failure and every answer (under `--until-idle` it gives up on a long outage). */
  giveUp?: GiveUp;
}

const UNAVAILABLE = new Set([408, 429, 502, 503, 504]);

type Attempted = { response: Response; text: string } | { failure: string };

interface Call<T> {
  method: "GET" | "POST";
  path: string;
  /** A POST's JSON body. */
  body?: Record<string, unknown>;
  headers: Record<string, string>;
  schema: v.GenericSchema<unknown, T>;
}

export class DispatcherClient {
  private readonly backoff: BackoffPolicy;
  private readonly timeoutMs: number;
  private readonly maxServerErrorRetries: number;
  /** The dispatcher, as the give-up line names it. */
  readonly dependency: Dependency;

  constructor(private readonly opts: DispatcherClientOptions) {
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxServerErrorRetries = opts.maxServerErrorRetries ?? 4;
    this.dependency = { name: "the dispatcher", where: `${opts.baseUrl} (DISPATCHER_URL)` };
  }

  private get internalAuth(): Record<string, string> {
    return { authorization: `Bearer ${this.opts.internalToken}` };
  }

  claim(taskId: string, signal: AbortSignal): Promise<Reply<ClaimEnvelope>> {
    const path = "/internal/task-claim";
    const headers = this.internalAuth;
    return this.call(
      { method: "POST", path, body: { task_id: taskId }, headers, schema: ClaimEnvelope },
      signal,
    );
  }

  /** The work still in the pipeline (outbox, queued and running tasks): what `--until-idle` waits for. */
  backlog(signal: AbortSignal): Promise<Reply<BacklogResponse>> {
    const path = "/internal/backlog";
    return this.call(
      { method: "GET", path, headers: this.internalAuth, schema: BacklogResponse },
      signal,
    );
  }

  heartbeat(lease: LeaseIdentity, signal: AbortSignal): Promise<Reply<HeartbeatResponse>> {
    return this.task("/v1/task/heartbeat", fence(lease), lease, HeartbeatResponse, signal);
  }

  bufferPublish(
    lease: LeaseIdentity,
    batch: BatchBody,
    signal: AbortSignal,
  ): Promise<Reply<BufferPublishResponse>> {
    const body = { ...fence(lease), ...batch };
    return this.task("/v1/task/buffer-publish", body, lease, BufferPublishResponse, signal);
  }

  /**
   * Completes the attempt; with `batch`, the dispatcher publishes it in the
   * same statement (for an attempt of one batch: one call instead of two).
   */
  complete(
    lease: LeaseIdentity,
    signal: AbortSignal,
    batch?: BatchBody,
  ): Promise<Reply<CompleteResponse>> {
    const body = batch === undefined ? fence(lease) : { ...fence(lease), batch };
    return this.task("/v1/task/complete", body, lease, CompleteResponse, signal);
  }

  /** Ends the attempt failed: retryable → queued again after a backoff, else failed for good. */
  fail(
    lease: LeaseIdentity,
    failure: { reason: string; retryable: boolean },
    signal: AbortSignal,
  ): Promise<Reply<FailResponse>> {
    const body = { ...fence(lease), ...failure };
    return this.task("/v1/task/fail", body, lease, FailResponse, signal);
  }

  /** A `/v1/task/*` call: a POST carrying the attempt's capability. */
  private task<T>(
    path: string,
    body: Record<string, unknown>,
    lease: LeaseIdentity,
    schema: v.GenericSchema<unknown, T>,
    signal: AbortSignal,
  ): Promise<Reply<T>> {
    return this.call({ method: "POST", path, body, headers: capability(lease), schema }, signal);
  }

  private async call<T>(c: Call<T>, signal: AbortSignal): Promise<Reply<T>> {
    const scope = scopeOf(c.body ?? {});
    const what = `${c.method} ${c.path}`;
    let serverErrors = 0;
    for (let retry = 0; ; retry++) {
      if (signal.aborted) throw new RequestAbortedError(`${what} abandoned`);
      const attempted = await this.send(c, signal);
      if ("failure" in attempted) {
        if (signal.aborted) throw new RequestAbortedError(`${what} abandoned`);
        await this.pause(c.path, scope, retry, attempted.failure, signal);
        continue;
      }
      const { response, text } = attempted;
      const status = response.status;
      const bug = status >= 500 && !UNAVAILABLE.has(status);
      if (UNAVAILABLE.has(status) || (bug && serverErrors++ < this.maxServerErrorRetries)) {
        await this.pause(c.path, scope, retry, `HTTP ${status} ${text.slice(0, 200)}`, signal);
        continue;
      }
      this.reachable();
      return interpret(what, response, text, c.schema);
    }
  }

  private async send<T>(c: Call<T>, signal: AbortSignal): Promise<Attempted> {
    try {
      const response = await fetch(`${this.opts.baseUrl}${c.path}`, {
        method: c.method,
        headers:
          c.body === undefined ? c.headers : { "content-type": "application/json", ...c.headers },
        ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      return { response, text: await response.text() };
    } catch (err) {
      return { failure: err instanceof Error ? err.message : String(err) };
    }
  }

  /** The dispatcher answered: an outage, if there was one, is over. */
  private reachable(): void {
    const outage = this.opts.giveUp?.up(this.dependency);
    if (outage !== undefined)
      this.opts.log.info(WORKER_LOG.dispatcherBack, {
        failures: outage.failures,
        down_ms: Date.now() - outage.since,
      });
  }

  private async pause(
    path: string,
    scope: Record<string, unknown>,
    retry: number,
    why: string,
    signal: AbortSignal,
  ) {
    this.opts.giveUp?.down(this.dependency, new Error(why));
    const delayMs = backoffDelay(this.backoff, retry);
    const fields = { ...scope, path, retry: retry + 1, delay_ms: delayMs, reason: why };
    if (retry === 0 || retry % 10 === 9)
      this.opts.log.warn(WORKER_LOG.dispatcherUnavailable, fields);
    else this.opts.log.debug(WORKER_LOG.dispatcherUnavailable, fields);
    await sleep(delayMs, signal);
  }
}

/** task_id and attempt of a request body, for the retry log lines. */
function scopeOf(body: Record<string, unknown>): Record<string, unknown> {
  const { task_id, attempt } = body;
  return attempt === undefined ? { task_id } : { task_id, attempt };
}

function fence(lease: LeaseIdentity) {
  return { task_id: lease.task_id, attempt: lease.attempt, lease_token: lease.lease_token };
}

function capability(lease: LeaseIdentity): Record<string, string> {
  return { [CAPABILITY_HEADER]: lease.capability_token };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `Retry-After` in delta-seconds, as ms; undefined when absent or an HTTP date. */
function retryAfterMs(response: Response): { retryAfterMs?: number } {
  const header = response.headers.get("retry-after")?.trim() ?? "";
  return /^\d{1,9}$/.test(header) ? { retryAfterMs: Number(header) * 1000 } : {};
}

function interpret<T>(
  what: string,
  response: Response,
  text: string,
  schema: v.GenericSchema<unknown, T>,
): Reply<T> {
  const status = response.status;
  const json = parseJson(text);
  if (status >= 200 && status < 300) {
    const parsed = v.safeParse(schema, json);
    if (!parsed.success) {
      throw new DispatcherContractError(
        `${what} answered ${status} with a body that breaks its contract: ${v.summarize(parsed.issues)}`,
      );
    }
    return { ok: true, status, body: parsed.output };
  }
  const error = v.safeParse(ErrorBody, json);
  const after = retryAfterMs(response);
  if (error.success) return { ok: false, status, ...error.output, ...after };
  return { ok: false, status, error: `http_${status}`, message: text.slice(0, 500), ...after };
}
