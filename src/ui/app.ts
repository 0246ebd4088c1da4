import { isTransientDbError } from "../db/errors";
import { createLogger, type Logger } from "../log";
import {
  type ApiDeps,
  getDlq,
  getOverview,
  getTask,
  getTasks,
  json,
  postRedrive,
  problem,
} from "./api";
import type { WebAssets } from "./assets";
import {
  CSRF_FIELD,
  CSRF_HEADER,
  clearedCookie,
  cookieOf,
  SESSION_COOKIE,
  type Session,
  Sessions,
  sameOrigin,
  sameSecret,
  sessionCookie,
  tokenChecker,
} from "./auth";
import { LoginThrottle } from "./throttle";

/**
 * The dashboard as one request handler (Hono style: tested in-process with
 * `app.fetch(new Request(…))`). The rules, in order:
 * - scripts, stylesheets and the login page are public (they hold no data);
 * - without a session, every page redirects to /login and every API call
 *   answers 401;
 * - every state-changing request (POST) needs the session and its CSRF token.
 */

export interface UiDeps extends ApiDeps {
  token: string;
  assets: WebAssets;
  sessions?: Sessions;
  throttle?: LoginThrottle;
  log?: Logger;
}

export interface UiApp {
  /** `client` keys the login throttle (the peer address; one key in-process). */
  fetch(req: Request, client?: string): Promise<Response>;
}

/** The log messages of a login (with the client's address, never the token). */
export const LOGIN_REFUSED = "login refused";
export const LOGIN_ACCEPTED = "login accepted";

/** The pages (the browser's router draws them); /logout is a page with the button that posts. */
const PAGE = /^\/(|tasks|tasks\/[^/]+|dlq|logout)$/;
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function secured(res: Response, cache: string): Response {
  const h = res.headers;
  h.set("content-security-policy", CSP);
  h.set("x-content-type-options", "nosniff");
  h.set("referrer-policy", "same-origin");
  h.set("x-frame-options", "DENY");
  if (!h.has("cache-control")) h.set("cache-control", cache);
  return res;
}

const html = (body: string, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/html;charset=utf-8" } });
const redirect = (location: string, status = 303, headers: Record<string, string> = {}) =>
  new Response(null, { status, headers: { location, ...headers } });

interface Ctx {
  d: UiDeps;
  log: Logger;
  sessions: Sessions;
  throttle: LoginThrottle;
  tokenOk: (given: string) => boolean;
}

async function login(c: Ctx, req: Request, client: string): Promise<Response> {
  if (!sameOrigin(req)) return problem(403, "cross_origin", "a login from another site");
  const wait = c.throttle.waitMs(client);
  if (wait > 0) {
    c.log.warn(LOGIN_REFUSED, { client, why: "throttled", wait_ms: wait });
    const seconds = String(Math.ceil(wait / 1000));
    return redirect(`/login?error=wait&seconds=${seconds}`, 303, { "retry-after": seconds });
  }
  const form = await req.formData().catch(() => null);
  const given = form?.get("token");
  if (typeof given !== "string" || given.length > 1024 || !c.tokenOk(given)) {
    c.throttle.failed(client);
    c.log.warn(LOGIN_REFUSED, { client, why: "wrong token" });
    return redirect("/login?error=wrong");
  }
  c.throttle.succeeded(client);
  const s = c.sessions.create();
  c.log.info(LOGIN_ACCEPTED, { client });
  return redirect("/", 303, { "set-cookie": sessionCookie(req, s, c.sessions.ttlMs) });
}

/** The CSRF token of a state-changing request: a header (API) or a form field (logout). */
async function csrfOk(req: Request, s: Session): Promise<boolean> {
  const header = req.headers.get(CSRF_HEADER);
  if (header !== null) return sameSecret(header, s.csrf);
  const type = req.headers.get("content-type") ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) return false;
  const field = (await req.formData().catch(() => null))?.get(CSRF_FIELD);
  return typeof field === "string" && sameSecret(field, s.csrf);
}

async function api(d: UiDeps, req: Request, url: URL, s: Session): Promise<Response> {
  const path = url.pathname;
  if (req.method === "GET") {
    if (path === "/api/session") return json(200, { csrf: s.csrf });
    if (path === "/api/overview") return getOverview(d);
    if (path === "/api/tasks") return getTasks(d, url);
    if (path.startsWith("/api/tasks/")) return getTask(d, path.slice("/api/tasks/".length));
    if (path === "/api/dlq") return getDlq(d);
  }
  if (req.method === "POST" && path === "/api/dlq/redrive") return postRedrive(d, req);
  return problem(404, "not_found", "no such endpoint");
}

async function route(c: Ctx, req: Request, client: string): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname;
  const get = req.method === "GET" || req.method === "HEAD";
  const asset = c.d.assets.files.get(path);
  if (get && asset !== undefined) {
    const cache = "public, max-age=31536000, immutable";
    return new Response(asset.body, {
      headers: { "content-type": asset.type, "cache-control": cache },
    });
  }
  if (path === "/healthz" && get) return json(200, { status: "ok" });
  const s = c.sessions.get(cookieOf(req, SESSION_COOKIE));
  if (path === "/login") {
    if (req.method === "POST") return login(c, req, client);
    if (get) return s === undefined ? html(c.d.assets.login) : redirect("/", 302);
  }
  if (s === undefined) {
    if (get && !path.startsWith("/api/")) return redirect("/login", 302);
    return problem(401, "unauthenticated", "log in first");
  }
  if (!get) {
    if (!(await csrfOk(req, s))) return problem(403, "csrf", "missing or wrong CSRF token");
    if (path === "/logout" && req.method === "POST") {
      c.sessions.end(s.id);
      return redirect("/login", 303, { "set-cookie": clearedCookie(req) });
    }
  }
  if (path.startsWith("/api/")) return api(c.d, req, url, s);
  if (get && PAGE.test(path)) return html(c.d.assets.page);
  return problem(404, "not_found", "no such page");
}

export function createUiApp(d: UiDeps): UiApp {
  const c: Ctx = {
    d,
    log: d.log ?? createLogger("ui"),
    sessions: d.sessions ?? new Sessions(),
    throttle:
      d.throttle ?? new LoginThrottle({ free: 5, baseMs: 1000, maxMs: 60_000, maxKeys: 10_000 }),
    tokenOk: tokenChecker(d.token),
  };
  return {
    async fetch(req, client = "local") {
      try {
        return secured(await route(c, req, client), "no-store");
      } catch (err) {
        c.log.error("request failed", { path: new URL(req.url).pathname, err });
        const res = isTransientDbError(err)
          ? problem(503, "unavailable", "a database is unreachable; retry")
          : problem(500, "internal", "internal error");
        return secured(res, "no-store");
      }
    },
  };
}
