import { Overview } from "../../contract";
import { getJson } from "../lib/api";
import { rateChart } from "../lib/chart";
import { h, mount } from "../lib/dom";
import { count, num, rate } from "../lib/format";
import { type PageContext, poll } from "./page";

/** `/`: counts, queues, throughput and roles, refreshed every 2 s. */

export const REFRESH_MS = 2000;
const STATUSES = ["queued", "running", "succeeded", "failed"] as const;

function stat(key: string, label: string, value: { n: number; exact: boolean }, href?: string) {
  const body = [
    h("div", { class: "label" }, h("span", { class: `swatch ${key}` }), label),
    h(
      "div",
      { class: "value", "data-count": key, "data-n": value.n, "data-exact": String(value.exact) },
      count(value),
    ),
  ];
  return href === undefined
    ? h("div", { class: "stat" }, body)
    : h("a", { class: "stat", href, "data-link": true }, body);
}

function cell(n: number, extra = "") {
  return h("td", { class: `num ${n === 0 ? "zero" : ""} ${extra}` }, num(n));
}

function queues(o: Overview) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Queues", h("small", {}, "messages")),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "queues" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", {}, "Queue"),
            ["Ready", "In flight", "Delayed", "Dead"].map((t) =>
              h("th", { class: `num ${t === "Delayed" ? "hide-sm" : ""}` }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          o.queues.map((q) =>
            h(
              "tr",
              { "data-queue": q.queue },
              h("td", { class: "mono" }, q.queue),
              cell(q.ready),
              cell(q.in_flight),
              cell(q.delayed, "hide-sm"),
              q.dead === 0
                ? cell(0)
                : h(
                    "td",
                    { class: "num" },
                    h(
                      "a",
                      { href: "/dlq", "data-link": true },
                      h("span", { class: "pill dead" }, num(q.dead)),
                    ),
                  ),
            ),
          ),
        ),
      ),
    ),
  );
}

function throughput(o: Overview) {
  const t = o.throughput;
  const last = (xs: Array<number | null>) => (xs.at(-2) ?? 0) / t.bucket_seconds;
  const peak = (xs: Array<number | null>) =>
    Math.max(0, ...xs.map((n) => n ?? 0)) / t.bucket_seconds;
  const legend = (cls: string, label: string, xs: Array<number | null>) =>
    h(
      "div",
      { class: "legend" },
      h("span", {}, h("i", { class: cls }), label),
      h("span", {}, "now ", h("b", {}, rate(last(xs)), "/s")),
      h("span", {}, "peak ", h("b", {}, rate(peak(xs)), "/s")),
    );
  const filled = !t.finished.includes(null) && !t.rows.includes(null);
  return h(
    "section",
    { class: "panel", id: "throughput", "data-filled": String(filled) },
    h(
      "h2",
      {},
      "Throughput",
      h(
        "small",
        {},
        filled
          ? `per second, last 15 min, ${t.bucket_seconds} s buckets`
          : "per second, last 15 min (reading older minutes…)",
      ),
    ),
    rateChart(t.finished, t.bucket_seconds, { line: "line-a", label: "tasks finished per second" }),
    legend("", "tasks finished", t.finished),
    rateChart(t.rows, t.bucket_seconds, { line: "line-b", label: "rows ingested per second" }),
    legend("b", "rows ingested", t.rows),
  );
}

function roles(o: Overview) {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Roles connected", h("small", {}, "database sessions now")),
    h(
      "div",
      { class: "roles", id: "roles" },
      o.roles.map((r) =>
        h(
          "div",
          {
            class: `role ${r.sessions > 0 ? "up" : ""}`,
            "data-role": r.role,
            "data-sessions": r.sessions,
          },
          h("div", { class: "name" }, h("span", { class: "role-dot" }), `${r.role}s`),
          h(
            "div",
            { class: "n" },
            r.sessions === 0
              ? "none connected"
              : `${num(r.sessions)} session${r.sessions === 1 ? "" : "s"}`,
          ),
        ),
      ),
    ),
  );
}

function render(ctx: PageContext, o: Overview) {
  mount(
    ctx.root,
    h("h1", {}, "Overview"),
    h(
      "p",
      { class: "sub" },
      `Live, refreshed every ${REFRESH_MS / 1000} s. Counts above 5,000 are estimates (≈).`,
    ),
    h(
      "div",
      { class: "stats" },
      STATUSES.map((st) =>
        stat(
          st,
          st[0]?.toUpperCase() + st.slice(1),
          o.tasks[st] ?? { n: 0, exact: true },
          `/tasks?status=${st}`,
        ),
      ),
      stat("outbox", "Outbox backlog", o.outbox.pending),
      stat("rows", "Rows ingested", o.alerts.rows),
    ),
    h(
      "div",
      { class: "grid two" },
      throughput(o),
      h("div", { class: "stack" }, roles(o), queues(o)),
    ),
  );
}

export function overviewPage(ctx: PageContext): void {
  mount(ctx.root, h("h1", {}, "Overview"), h("p", { class: "sub" }, "Loading…"));
  poll(ctx, REFRESH_MS, async () =>
    render(ctx, await getJson("/api/overview", Overview, ctx.signal)),
  );
}
