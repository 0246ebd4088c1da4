import * as v from "valibot";
import { ApiError, Session } from "../../contract";

/**
 * Calls to the dashboard's API. Every answer is parsed with its schema; a
 * 401 (the session ended) goes back to the login page; a POST carries the
 * session's CSRF token.
 */

export class ApiFailure extends Error {
  override name = "ApiFailure";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function answer<S extends v.GenericSchema>(
  res: Response,
  schema: S,
): Promise<v.InferOutput<S>> {
  if (res.status === 401) {
    location.assign("/login");
    throw new ApiFailure(401, "the session ended");
  }
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const e = v.safeParse(ApiError, body);
    throw new ApiFailure(res.status, e.success ? e.output.message : `HTTP ${res.status}`);
  }
  return v.parse(schema, body);
}

export async function getJson<S extends v.GenericSchema>(
  path: string,
  schema: S,
  signal?: AbortSignal,
): Promise<v.InferOutput<S>> {
  const res = await fetch(path, { headers: { accept: "application/json" }, signal });
  return answer(res, schema);
}

let csrf: Promise<string> | undefined;

export function csrfToken(): Promise<string> {
  csrf ??= getJson("/api/session", Session).then((s) => s.csrf);
  return csrf;
}

export async function postJson<S extends v.GenericSchema>(
  path: string,
  body: unknown,
  schema: S,
): Promise<v.InferOutput<S>> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": await csrfToken() },
    body: JSON.stringify(body),
  });
  return answer(res, schema);
}
