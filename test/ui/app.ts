import type { Sql } from "../../src/db/connect";
import { pgAdmin } from "../../src/queue/pg/admin";
import { createUiApp, type UiApp } from "../../src/ui/app";
import { webAssets } from "../../src/ui/assets";
import { SESSION_COOKIE, Sessions } from "../../src/ui/auth";
import { overviewSource, readOverview } from "../../src/ui/overview";
import { LoginThrottle } from "../../src/ui/throttle";

/** The dashboard in-process on a test database, Hono style: `app.fetch(new Request(…))`. */

export const TOKEN = "ui-test-token-0123456789abcdef";
export const BASE = "http://ui.test";

export interface TestUi {
  app: UiApp;
  clock: { now: number };
  request(
    path: string,
    init?: RequestInit & { cookie?: string; client?: string },
  ): Promise<Response>;
  login(token?: string, client?: string): Promise<Response>;
  /** Logs in and returns the session cookie and its CSRF token. */
  session(): Promise<{ cookie: string; csrf: string }>;
}

export async function testUi(sql: Sql): Promise<TestUi> {
  const clock = { now: Date.now() };
  const now = () => clock.now;
  const admin = pgAdmin(sql);
  const source = overviewSource({ state: sql, data: sql, admin });
  const app = createUiApp({
    state: sql,
    data: sql,
    admin,
    overview: () => readOverview(source),
    token: TOKEN,
    assets: await webAssets(),
    sessions: new Sessions({ ttlMs: 3_600_000, max: 100, now }),
    throttle: new LoginThrottle({ free: 3, baseMs: 1000, maxMs: 8000, maxKeys: 100, now }),
  });
  const request: TestUi["request"] = (path, init = {}) => {
    const { cookie, client, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (cookie !== undefined) headers.set("cookie", cookie);
    return app.fetch(new Request(`${BASE}${path}`, { ...rest, headers }), client);
  };
  const login: TestUi["login"] = (token = TOKEN, client = "10.0.0.1") =>
    request("/login", { method: "POST", body: new URLSearchParams({ token }), client });
  return {
    app,
    clock,
    request,
    login,
    async session() {
      const res = await login();
      const set = res.headers.get("set-cookie") ?? "";
      const id = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(set)?.[1];
      if (id === undefined) throw new Error(`no session cookie in ${set}`);
      const cookie = `${SESSION_COOKIE}=${id}`;
      const s = await request("/api/session", { cookie });
      const body: unknown = await s.json();
      if (
        typeof body !== "object" ||
        body === null ||
        !("csrf" in body) ||
        typeof body.csrf !== "string"
      )
        throw new Error("no csrf token");
      return { cookie, csrf: body.csrf };
    },
  };
}
