import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { UI_LISTENING } from "../../src/ui/server";
import { freePort } from "../support/embedded";
import { type Role, spawnHarness } from "../support/processes";

/**
 * A real Chromium (Debian's, at /usr/bin/chromium — Playwright never
 * downloads one) driving a real `harness ui` process.
 */

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}

export interface UiProcess {
  url: string;
  role: Role;
  stop(): Promise<number>;
}

/** `harness ui` on a free port with the given environment; ready once it logs that it listens. */
export async function startUiProcess(env: Record<string, string>): Promise<UiProcess> {
  const port = await freePort();
  const role = spawnHarness("ui", ["ui", "--port", String(port)], env);
  await role.waitForLog((l) => l.msg === UI_LISTENING, "the dashboard to listen", 30_000);
  return { url: `http://127.0.0.1:${port}`, role, stop: () => role.stop("SIGTERM") };
}

/** Logs in through the form, as a person would. */
export async function logIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/login`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${url}/`), page.click("button[type=submit]")]);
}

/** `Cookie:` header value of the context's cookies for `url`. */
export async function cookieHeader(context: BrowserContext, url: string): Promise<string> {
  const cookies = await context.cookies(url);
  return cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

/**
 * Screenshots for the README go to UI_SCREENSHOTS_DIR (e.g. docs/img) when it
 * is set; otherwise none are taken.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.UI_SCREENSHOTS_DIR;
  if (dir === undefined || dir === "") return;
  const root = resolve(import.meta.dir, "..", "..", dir);
  mkdirSync(root, { recursive: true });
  await page.screenshot({ path: join(root, `${name}.png`), fullPage: true });
}
