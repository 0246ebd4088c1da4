import { type TaskItem, TaskList } from "../../contract";
import { getJson } from "../lib/api";
import { h, mount } from "../lib/dom";
import { num, shortId, when } from "../lib/format";
import { failure, type PageContext } from "./page";

/** `/tasks`: filtered by status and org, searched by id, one keyset page at a time. */

const FILTERS: Array<[string, string]> = [
  ["", "any status"],
  ["queued", "queued"],
  ["running", "running"],
  ["expired", "running, lease expired"],
  ["succeeded", "succeeded"],
  ["failed", "failed"],
];

export function statusPills(t: Pick<TaskItem, "status" | "lease_expired">) {
  return [
    h("span", { class: `pill ${t.status}` }, t.status),
    t.lease_expired
      ? [
          " ",
          h(
            "span",
            {
              class: "pill expired",
              title: "the lease is over; no one has claimed the task again yet",
            },
            "lease expired",
          ),
        ]
      : null,
  ];
}

function row(t: TaskItem, now: string) {
  return h(
    "tr",
    { "data-task": t.id },
    h(
      "td",
      { class: "nowrap" },
      h(
        "a",
        { href: `/tasks/${t.id}`, "data-link": true, class: "mono", title: t.id },
        shortId(t.id),
      ),
    ),
    h("td", {}, t.org_id),
    h("td", { class: "nowrap" }, statusPills(t)),
    h("td", { class: "num" }, num(t.attempt)),
    h("td", {}, when(t.created_at, now)),
    h("td", { class: "hide-sm" }, when(t.finished_at ?? t.updated_at, now)),
  );
}

function filterForm(ctx: PageContext) {
  const q = ctx.query;
  const select = h(
    "select",
    { name: "status" },
    FILTERS.map(([value, label]) =>
      h("option", { value, selected: q.get("status") === value }, label),
    ),
  );
  const form = h(
    "form",
    { class: "filters", id: "task-filters" },
    h("label", {}, "Status", select),
    h(
      "label",
      {},
      "Org",
      h("input", { name: "org", value: q.get("org") ?? "", placeholder: "any org", size: 14 }),
    ),
    h(
      "label",
      {},
      "Task id",
      h("input", {
        name: "q",
        value: q.get("q") ?? "",
        placeholder: "id or its first digits",
        size: 24,
        class: "mono",
      }),
    ),
    h("button", { type: "submit", class: "primary" }, "Show"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form))
      if (typeof v === "string" && v.trim() !== "") params.set(k, v.trim());
    const text = params.toString();
    ctx.go(text === "" ? "/tasks" : `/tasks?${text}`);
  });
  return form;
}

function pageLinks(ctx: PageContext, next: string | null) {
  const base = new URLSearchParams(ctx.query);
  base.delete("after");
  const first = base.toString();
  const nextParams = new URLSearchParams(base);
  if (next !== null) nextParams.set("after", next);
  return h(
    "div",
    { class: "pager" },
    ctx.query.has("after")
      ? h(
          "a",
          { href: first === "" ? "/tasks" : `/tasks?${first}`, "data-link": true },
          "← First page",
        )
      : h("span", {}, "Newest first"),
    next === null
      ? h("span", {}, "Last page")
      : h("a", { href: `/tasks?${nextParams}`, "data-link": true, id: "next-page" }, "Older →"),
  );
}

export function tasksPage(ctx: PageContext): void {
  const body = h("div", {}, h("p", { class: "empty" }, "Loading…"));
  mount(
    ctx.root,
    h("h1", {}, "Tasks"),
    h("p", { class: "sub" }, "Newest first. Pick a status or an org, or search by task id."),
    h("section", { class: "panel" }, filterForm(ctx), body),
  );
  const params = new URLSearchParams(ctx.query);
  void getJson(`/api/tasks?${params}`, TaskList, ctx.signal).then(
    (list) => {
      ctx.live(true, "live");
      mount(
        body,
        list.tasks.length === 0
          ? h("p", { class: "empty" }, "No task matches.")
          : h(
              "div",
              { class: "table-wrap" },
              h(
                "table",
                { id: "tasks" },
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    h("th", {}, "Task"),
                    h("th", {}, "Org"),
                    h("th", {}, "Status"),
                    h("th", { class: "num" }, "Attempt"),
                    h("th", {}, "Created"),
                    h("th", { class: "hide-sm" }, "Updated"),
                  ),
                ),
                h(
                  "tbody",
                  {},
                  list.tasks.map((t) => row(t, list.at)),
                ),
              ),
            ),
        pageLinks(ctx, list.next),
      );
    },
    (err: unknown) => {
      if (!ctx.signal.aborted) mount(body, h("p", { class: "notice error" }, failure(err)));
    },
  );
}
