import { createHash, timingSafeEqual } from "node:crypto";
import * as v from "valibot";
import type { ErrorBody } from "../contracts/http";

/** Small HTTP helpers of the dispatcher: JSON answers, strict bodies, bearer auth. */

export { CAPABILITY_HEADER } from "../contracts/capability";
/** Larger bodies are refused with 413 and an error body (see readBody). */
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

/** Reads a JSON body and checks it against a strict schema: 400 on any flaw. */
export async function readBody<S extends v.GenericSchema>(
  req: Request,
  schema: S,
): Promise<Parsed<v.InferOutput<S>>> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  const tooLarge = () =>
    problem(413, "body_too_large", `the body must be at most ${MAX_BODY_BYTES} bytes`);
  if (declared > MAX_BODY_BYTES) return { ok: false, response: tooLarge() };
  let raw: unknown;
  try {
    const bytes = await req.bytes();
    if (bytes.byteLength > MAX_BODY_BYTES) return { ok: false, response: tooLarge() };
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return { ok: false, response: problem(400, "malformed_json", "the body is not valid JSON") };
  }
  const r = v.safeParse(schema, raw);
  if (!r.success) {
    return { ok: false, response: problem(400, "invalid_body", v.summarize(r.issues)) };
  }
  return { ok: true, value: r.output };
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
