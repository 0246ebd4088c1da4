import { csrfToken } from "../lib/api";
import { h, mount } from "../lib/dom";
import type { PageContext } from "./page";

/** `/logout` typed in the address bar: logging out is a POST (with the CSRF token), so ask. */
export function logoutPage(ctx: PageContext): void {
  const csrf = h("input", { type: "hidden", name: "csrf", value: "" });
  void csrfToken().then((token) => {
    csrf.value = token;
  });
  mount(
    ctx.root,
    h("h1", {}, "Log out"),
    h(
      "form",
      { method: "post", action: "/logout", class: "panel", id: "logout-page" },
      h("p", {}, "End this session? You will need the token to log in again."),
      csrf,
      h("button", { type: "submit", class: "primary" }, "Log out"),
    ),
  );
}
