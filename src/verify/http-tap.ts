import * as v from "valibot";
import type { Direction, LinkTap } from "./proxy";

/**
 * Watches the HTTP/1.1 traffic between a worker and a dispatcher as the
 * fault proxy passes it on, and keeps every lease the dispatcher granted:
 * the claim's and each heartbeat's `lease_expires_at`. The dispatcher sets
 * it to its database's `now()` plus the lease length, so the database time of
 * each renewal is known exactly, and the checker can tell whether an attempt
 * renewed its lease after it was fenced out. An exchange whose answer never
 * arrived (a reset) is not seen: what is kept did happen.
 */

export interface LeaseGrant {
  kind: "claim" | "heartbeat";
  taskId: string;
  attempt: number;
  leaseExpiresAt: Date;
}

interface HttpMessage {
  startLine: string;
  body: Uint8Array;
}

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);

function indexOf(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const decoder = new TextDecoder();

/** Reads whole HTTP/1.1 messages (Content-Length or chunked bodies) from a byte stream. */
export class HttpReader {
  private buf = new Uint8Array(0);

  push(bytes: Uint8Array): HttpMessage[] {
    const joined = new Uint8Array(this.buf.length + bytes.length);
    joined.set(this.buf);
    joined.set(bytes, this.buf.length);
    this.buf = joined;
    const out: HttpMessage[] = [];
    for (let m = this.next(); m !== undefined; m = this.next()) out.push(m);
    return out;
  }

  private next(): HttpMessage | undefined {
    const end = indexOf(this.buf, CRLFCRLF);
    if (end < 0) return undefined;
    const head = decoder.decode(this.buf.subarray(0, end)).split("\r\n");
    const startLine = head[0] ?? "";
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0)
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const rest = this.buf.subarray(end + 4);
    const chunked = headers.get("transfer-encoding")?.toLowerCase().includes("chunked") ?? false;
    const body = chunked ? dechunk(rest) : sized(rest, Number(headers.get("content-length") ?? 0));
    if (body === undefined) return undefined;
    this.buf = rest.slice(body.consumed);
    return { startLine, body: body.bytes };
  }
}

function sized(rest: Uint8Array, length: number) {
  if (rest.length < length) return undefined;
  return { bytes: rest.subarray(0, length), consumed: length };
}

function dechunk(rest: Uint8Array): { bytes: Uint8Array; consumed: number } | undefined {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const eol = indexOf(rest, CRLFCRLF.subarray(0, 2), at);
    if (eol < 0) return undefined;
    const size = Number.parseInt(decoder.decode(rest.subarray(at, eol)), 16);
    if (Number.isNaN(size)) return { bytes: new Uint8Array(0), consumed: rest.length };
    const start = eol + 2;
    if (rest.length < start + size + 2) return undefined;
    if (size === 0) {
      // Trailers are not used here: the empty line right after the last chunk ends it.
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        bytes.set(p, o);
        o += p.length;
      }
      return { bytes, consumed: start + 2 };
    }
    parts.push(rest.subarray(start, start + size));
    at = start + size + 2;
  }
}

const TaskRef = v.object({ task_id: v.string(), attempt: v.number() });
const Granted = v.object({ lease_expires_at: v.string() });

const GRANTING: Record<string, LeaseGrant["kind"]> = {
  "/internal/task-claim": "claim",
  "/v1/task/heartbeat": "heartbeat",
};

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
}

interface Exchange {
  requests: HttpReader;
  responses: HttpReader;
  /** Requests sent and not answered yet, in order (HTTP/1.1 answers in order). */
  waiting: HttpMessage[];
}

export class LeaseTap implements LinkTap {
  readonly grants: LeaseGrant[] = [];
  private readonly conns = new Map<number, Exchange>();

  data(conn: number, direction: Direction, bytes: Uint8Array): void {
    let x = this.conns.get(conn);
    if (x === undefined) {
      x = { requests: new HttpReader(), responses: new HttpReader(), waiting: [] };
      this.conns.set(conn, x);
    }
    if (direction === "request") {
      x.waiting.push(...x.requests.push(bytes));
      return;
    }
    for (const response of x.responses.push(bytes)) {
      const request = x.waiting.shift();
      if (request !== undefined) this.record(request, response);
    }
  }

  closed(conn: number): void {
    this.conns.delete(conn);
  }

  private record(request: HttpMessage, response: HttpMessage): void {
    const [method, path] = request.startLine.split(" ");
    const kind = method === "POST" && path !== undefined ? GRANTING[path] : undefined;
    if (kind === undefined || response.startLine.split(" ")[1] !== "200") return;
    const answer = parseJson(response.body);
    const granted = v.safeParse(Granted, answer);
    // A heartbeat names its attempt; a claim names only the task, its answer the attempt.
    const who = v.safeParse(TaskRef, kind === "claim" ? answer : parseJson(request.body));
    if (!granted.success || !who.success) return;
    this.grants.push({
      kind,
      taskId: who.output.task_id,
      attempt: who.output.attempt,
      leaseExpiresAt: new Date(granted.output.lease_expires_at),
    });
  }
}
