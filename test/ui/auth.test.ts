import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { ConfigError, parseConfig } from "../../src/config";
import { pgPublisher } from "../../src/queue/pg/publisher";
import { SESSION_COOKIE } from "../../src/ui/auth";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { TOKEN, testUi } from "./app";

/** The dashboard's authentication rules, in-process (no server, a real database). */

const db = useFreshDatabase();

async function deadLetter(queue: "task_wakeup", error: string): Promise<string> {
  const [id] = await pgPublisher(db().sql).publish(queue, [
    { payload: { task_id: crypto.randomUUID() } },
  ]);
  if (id === undefined) throw new Error("nothing published");
  await db()
    .sql`UPDATE state.queue_messages SET queue_name = ${`${queue}.dlq`}, last_error = ${error} WHERE id = ${id}::bigint`;
  return id;
}

async function queueOf(id: string): Promise<string | undefined> {
  const [row] = await db()
    .sql`SELECT queue_name FROM state.queue_messages WHERE id = ${id}::bigint`;
  return row?.queue_name;
}

describe("ui: authentication", () => {
  test("without a session every page redirects to /login and every API call answers 401", async () => {
    const ui = await testUi(db().sql);
    for (const path of [
      "/",
      "/tasks",
      "/tasks/0b4ad1c2-7a39-4a83-9d5c-2f6f1d1b2c3d",
      "/dlq",
      "/logout",
      "/nope",
    ]) {
      const res = await ui.request(path);
      expect({ path, status: res.status, location: res.headers.get("location") }).toEqual({
        path,
        status: 302,
        location: "/login",
      });
    }
    for (const path of [
      "/api/overview",
      "/api/tasks",
      "/api/dlq",
      "/api/session",
      "/api/tasks/x",
    ]) {
      const res = await ui.request(path);
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(await res.json()).toMatchObject({ error: "unauthenticated" });
    }
    // A made-up session cookie is no session.
    const forged = await ui.request("/api/overview", { cookie: `${SESSION_COOKIE}=forged` });
    expect(forged.status).toBe(401);
  });

  test("the login page and the bundled assets are served without a session, with no data in them", async () => {
    const ui = await testUi(db().sql);
    const page = await ui.request("/login");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('type="password"');
    expect(html).toContain('name="token"');
    const assets = [...html.matchAll(/(?:href|src)="(\/[^"]+)"/g)].map((m) => m[1] ?? "");
    expect(assets.length).toBeGreaterThanOrEqual(2);
    for (const path of assets) {
      const res = await ui.request(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
  });

  test("a good token sets an HttpOnly, SameSite=Strict session cookie and redirects to /; a wrong one is refused", async () => {
    const ui = await testUi(db().sql);
    const wrong = await ui.login("not-the-token-at-all");
    expect(wrong.status).toBe(303);
    expect(wrong.headers.get("location")).toBe("/login?error=wrong");
    expect(wrong.headers.get("set-cookie")).toBeNull();

    const good = await ui.login(TOKEN, "10.0.0.2");
    expect(good.status).toBe(303);
    expect(good.headers.get("location")).toBe("/");
    const cookie = good.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; `));
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).not.toContain("Secure");
    const id = cookie.split(";")[0] ?? "";
    expect((await ui.request("/", { cookie: id })).status).toBe(200);
    expect((await ui.request("/api/overview", { cookie: id })).status).toBe(200);
    // Logged in already: /login goes to the overview.
    expect((await ui.request("/login", { cookie: id })).headers.get("location")).toBe("/");
  });

  test("over https the session cookie is Secure", async () => {
    const ui = await testUi(db().sql);
    const res = await ui.app.fetch(
      new Request("https://ui.test/login", {
        method: "POST",
        body: new URLSearchParams({ token: TOKEN }),
      }),
    );
    expect(res.headers.get("set-cookie")).toContain("; Secure");
  });

  test("repeated failures are slowed down: past the free ones even the right token waits, per client", async () => {
    const ui = await testUi(db().sql);
    for (let i = 0; i < 4; i++) {
      expect((await ui.login("wrong-token-wrong-token", "10.1.1.1")).headers.get("location")).toBe(
        "/login?error=wrong",
      );
    }
    // 3 free failures, the 4th set a 1 s wait: the right token is refused unchecked meanwhile.
    const waiting = await ui.login(TOKEN, "10.1.1.1");
    expect(waiting.headers.get("location")).toBe("/login?error=wait&seconds=1");
    expect(waiting.headers.get("retry-after")).toBe("1");
    expect(waiting.headers.get("set-cookie")).toBeNull();
    // Another client is not held up.
    expect((await ui.login(TOKEN, "10.1.1.2")).headers.get("location")).toBe("/");
    // Once the wait is over, the next failure doubles it.
    ui.clock.now += 1000;
    await ui.login("wrong-token-wrong-token", "10.1.1.1");
    ui.clock.now += 1000;
    expect((await ui.login(TOKEN, "10.1.1.1")).headers.get("location")).toBe(
      "/login?error=wait&seconds=1",
    );
    ui.clock.now += 1000;
    expect((await ui.login(TOKEN, "10.1.1.1")).headers.get("location")).toBe("/");
  });

  test("a login posted from another site is refused", async () => {
    const ui = await testUi(db().sql);
    const res = await ui.request("/login", {
      method: "POST",
      body: new URLSearchParams({ token: TOKEN }),
      headers: { origin: "https://evil.example" },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  test("a state-changing request needs the session and its CSRF token; without either it changes nothing", async () => {
    const ui = await testUi(db().sql);
    const id = await deadLetter("task_wakeup", "boom");
    const body = JSON.stringify({ queue: "task_wakeup", id });
    const post = (headers: Record<string, string>, cookie?: string) =>
      ui.request("/api/dlq/redrive", {
        method: "POST",
        body,
        headers: { "content-type": "application/json", ...headers },
        ...(cookie === undefined ? {} : { cookie }),
      });
    const { cookie, csrf } = await ui.session();
    const other = await ui.session();

    expect((await post({ "x-csrf-token": csrf })).status).toBe(401);
    expect((await post({}, cookie)).status).toBe(403);
    expect((await post({ "x-csrf-token": "x".repeat(43) }, cookie)).status).toBe(403);
    // Another session's token is no good for this one.
    expect((await post({ "x-csrf-token": other.csrf }, cookie)).status).toBe(403);
    expect(await queueOf(id)).toBe("task_wakeup.dlq");

    const ok = await post({ "x-csrf-token": csrf }, cookie);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ moved: 1 });
    expect(await queueOf(id)).toBe("task_wakeup");
  });

  test("/logout needs the CSRF token, then ends the session", async () => {
    const ui = await testUi(db().sql);
    const { cookie, csrf } = await ui.session();
    const form = (fields: Record<string, string>) =>
      ui.request("/logout", {
        method: "POST",
        cookie,
        body: new URLSearchParams(fields),
      });
    expect((await form({})).status).toBe(403);
    // A GET changes nothing: it is the page with the button.
    expect((await ui.request("/logout", { cookie })).status).toBe(200);
    expect((await ui.request("/api/overview", { cookie })).status).toBe(200);
    const out = await form({ csrf });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/login");
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await ui.request("/api/overview", { cookie })).status).toBe(401);
    expect((await ui.request("/", { cookie })).headers.get("location")).toBe("/login");
  });

  test("sessions expire", async () => {
    const ui = await testUi(db().sql);
    const { cookie } = await ui.session();
    ui.clock.now += 3_600_000;
    expect((await ui.request("/api/overview", { cookie })).status).toBe(401);
  });

  test("bad queries are 400, unknown tasks and endpoints 404", async () => {
    const ui = await testUi(db().sql);
    const { cookie } = await ui.session();
    const get = (path: string) => ui.request(path, { cookie });
    expect((await get("/api/tasks?status=nope")).status).toBe(400);
    expect((await get("/api/tasks?after=garbage")).status).toBe(400);
    const forged = Buffer.from(JSON.stringify(["not a time", crypto.randomUUID()])).toString(
      "base64url",
    );
    expect((await get(`/api/tasks?after=${forged}`)).status).toBe(400);
    const page = await get("/api/tasks?limit=1");
    expect(page.status).toBe(200);
    expect((await get("/api/tasks?q=zzz")).status).toBe(400);
    expect((await get("/api/tasks?limit=0")).status).toBe(400);
    expect((await get(`/api/tasks/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await get("/api/tasks/not-a-uuid")).status).toBe(404);
    expect((await get("/api/nothing")).status).toBe(404);
  });

  test("harness ui needs UI_AUTH_TOKEN of 16 characters or more, and never shows it", async () => {
    expect(parseConfig({}).ui).toEqual({ port: 8090, authToken: undefined });
    expect(parseConfig({ UI_PORT: "9001", UI_AUTH_TOKEN: TOKEN }).ui).toEqual({
      port: 9001,
      authToken: TOKEN,
    });
    const secret = "too-short-secret".slice(0, 15);
    expect(() => parseConfig({ UI_AUTH_TOKEN: secret })).toThrow(ConfigError);
    expect(() => parseConfig({ UI_AUTH_TOKEN: secret })).toThrow(
      /^UI_AUTH_TOKEN must be at least 16 characters$/,
    );
    const short = await runHarness(["ui"], { DATABASE_URL: db().url, UI_AUTH_TOKEN: secret });
    expect(short.code).toBe(2);
    expect(short.stderr.trim()).toBe("harness ui: UI_AUTH_TOKEN must be at least 16 characters");
    expect(short.stderr).not.toContain(secret);
    const none = await runHarness(["ui"], { DATABASE_URL: db().url });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("UI_AUTH_TOKEN is not set");
  }, 30_000);

  test("the task list's cursor takes you to the next page through the API", async () => {
    const ui = await testUi(db().sql);
    const { cookie } = await ui.session();
    await db()
      .sql`INSERT INTO state.tasks (org_id, payload) SELECT 'pages', '{}' FROM generate_series(1, 3)`;
    const Page = v.object({
      tasks: v.array(v.object({ id: v.string() })),
      next: v.nullable(v.string()),
    });
    const get = async (query: string) => {
      const res = await ui.request(`/api/tasks?org=pages&limit=2${query}`, { cookie });
      expect(res.status).toBe(200);
      return v.parse(Page, await res.json());
    };
    const first = await get("");
    expect(first.tasks.length).toBe(2);
    expect(first.next).not.toBeNull();
    const second = await get(`&after=${first.next}`);
    expect(second.tasks.length).toBe(1);
    expect(second.next).toBeNull();
    expect(new Set([...first.tasks, ...second.tasks].map((t) => t.id)).size).toBe(3);
  });
});
