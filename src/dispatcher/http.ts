import { createHash, timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import type { ErrorBody } from "../contracts/http";

/** Small HTTP helpers of the dispatcher: JSON answers, strict bodies, bearer auth. */

export { CAPABILITY_HEADER } from "../contracts/capability";
/** Larger bodies are refused with 413 and an error body while they stream (see readBody). */
export const MAX_BODY_BYTES = 64 * 1024;
/**
 * Bun.serve's own limit: a backstop far above MAX_BODY_BYTES. Bun answers it
 * with a bare 413 before any handler runs, so below it the handlers answer
 * oversized bodies themselves, with the `{error, message}` body.
 */
export const HARD_BODY_BYTES = 16 * 1024 * 1024;

export type Handler = (req: Request) => Response | Promise<Response>;

export const json = (status: number, body: unknown, headers?: Record<string, string>): Response =>
  Response.json(body, { status, headers });

export function problem(status: number, error: string, message: string): Response {
  const body: ErrorBody = { error, message };
  return json(status, body);
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

const utf8 = new TextDecoder();

/**
 * The body's text, read as it streams in (chunked bodies too) and refused
 * at the first byte past MAX_BODY_BYTES: no body is ever held beyond the
 * cap, whatever it declares or however long it runs.
 */
async function bodyText(req: Request): Promise<string | "too_large"> {
  const length = req.headers.get("content-length");
  const declared = Number(length ?? "0");
  if (declared > MAX_BODY_BYTES) return "too_large";
  // A body framed by its Content-Length alone is exactly that long: read it in
  // one go, without the per-chunk stream machinery (the common case, and the
  // cheap one). Chunked bodies are counted as they stream.
  if (length !== null && req.headers.get("transfer-encoding") === null) return req.text();
  if (req.body === null) return "";
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body) {
    total += chunk.byteLength;
    // Leaving the loop cancels the stream: the rest is never read.
    if (total > MAX_BODY_BYTES) return "too_large";
    parts.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return utf8.decode(out);
}

/** Reads a JSON body and checks it against a strict schema: 400 on any flaw, 413 past the cap. */
export async function readBody<S extends v.GenericSchema>(
  req: Request,
  schema: S,
): Promise<Parsed<v.InferOutput<S>>> {
  let raw: unknown;
  try {
    const text = await bodyText(req);
    if (text === "too_large") {
      const res = problem(
        413,
        "body_too_large",
        `the body must be at most ${MAX_BODY_BYTES} bytes`,
      );
      // The client may still be sending: close rather than read the rest.
      res.headers.set("Connection", "close");
      return { ok: false, response: res };
    }
    raw = JSON.parse(text);
  } catch {
    return { ok: false, response: problem(400, "malformed_json", "the body is not valid JSON") };
  }
  const r = v.safeParse(schema, raw);
  if (!r.success) {
    return { ok: false, response: problem(400, "invalid_body", v.summarize(r.issues)) };
  }
  return { ok: true, value: r.output };
}

/**
 * At most `max` requests handled at once, across every handler it wraps:
 * past it, 503 `overloaded` at once (nothing read, the connection closed),
 * so a flood of slow or large requests cannot pile up memory.
 */
export function concurrencyCap(max: number): (handler: Handler) => Handler {
  let inFlight = 0;
  return (handler) => async (req) => {
    if (inFlight >= max) {
      const res = problem(503, "overloaded", `more than ${max} requests at once; retry later`);
      res.headers.set("Connection", "close");
      res.headers.set("Retry-After", "1");
      return res;
    }
    inFlight++;
    try {
      return await handler(req);
    } finally {
      inFlight--;
    }
  };
}

/** Only `method` is answered; others get 405 with `Allow`. */
export function only(method: "GET" | "POST", handler: Handler): Handler {
  return (req) => {
    if (req.method === method || (method === "GET" && req.method === "HEAD")) return handler(req);
    const res = problem(405, "method_not_allowed", `use ${method}`);
    res.headers.set("Allow", method === "GET" ? "GET, HEAD" : method);
    return res;
  };
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** A constant-time check of `Authorization: Bearer <token>` against the expected token. */
export function bearerCheck(expected: string): (req: Request) => boolean {
  const want = digest(expected);
  return (req) => {
    const header = req.headers.get("authorization") ?? "";
    const match = /^Bearer (.+)$/.exec(header);
    // Hash both sides so the comparison takes the same time whatever the lengths.
    return timingSafeEqual(digest(match?.[1] ?? ""), want) && match !== null;
  };
}
