import { csrfToken } from "./lib/api";
import { dlqPage } from "./pages/dlq";
import { logoutPage } from "./pages/logout";
import { overviewPage } from "./pages/overview";
import type { Page, PageContext } from "./pages/page";
import { taskPage } from "./pages/task";
import { tasksPage } from "./pages/tasks";

/** The dashboard's router: one page per path, links followed without reloading. */

const ROUTES: Array<[RegExp, string, Page]> = [
  [/^\/$/, "overview", overviewPage],
  [/^\/tasks$/, "tasks", tasksPage],
  [/^\/tasks\/([^/]+)$/, "tasks", taskPage],
  [/^\/dlq$/, "dlq", dlqPage],
  [/^\/logout$/, "", logoutPage],
];

const root = document.getElementById("app");
const liveEl = document.getElementById("live");
const dialog = document.getElementById("confirm");
let current: AbortController | undefined;

function live(ok: boolean, text: string): void {
  if (liveEl === null) return;
  liveEl.className = `live ${ok ? "on" : "off"}`;
  const label = liveEl.querySelector(".text");
  if (label !== null) label.textContent = text;
}

function confirmChange(title: string, text: string, ok: string): Promise<boolean> {
  if (!(dialog instanceof HTMLDialogElement)) return Promise.resolve(false);
  const set = (id: string, value: string) => {
    const el = document.getElementById(id);
    if (el !== null) el.textContent = value;
  };
  set("confirm-title", title);
  set("confirm-text", text);
  set("confirm-ok", ok);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function render(): void {
  if (root === null) return;
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const path = location.pathname;
  for (const [pattern, nav, page] of ROUTES) {
    const match = pattern.exec(path);
    if (match === null) continue;
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.getAttribute("data-nav") === nav);
    }
    const ctx: PageContext = {
      root,
      params: match.slice(1).map((p) => decodeURIComponent(p)),
      query: new URLSearchParams(location.search),
      signal: controller.signal,
      live,
      confirm: confirmChange,
      go: navigate,
    };
    page(ctx);
    return;
  }
  root.textContent = "No such page.";
}

function navigate(path: string): void {
  history.pushState(null, "", path);
  window.scrollTo(0, 0);
  render();
}

document.addEventListener("click", (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey)
    return;
  const a = e.target instanceof Element ? e.target.closest("a[data-link]") : null;
  if (!(a instanceof HTMLAnchorElement) || a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener("popstate", render);

// The logout form posts the session's CSRF token.
void csrfToken().then((token) => {
  const field = document.querySelector<HTMLInputElement>("#logout input[name=csrf]");
  if (field !== null) field.value = token;
});

render();
