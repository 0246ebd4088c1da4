import { type DeadLetterView, Dlq, type DlqGroup, RedriveResult } from "../../contract";
import { getJson, postJson } from "../lib/api";
import { h, mount } from "../lib/dom";
import { num, shortId, when } from "../lib/format";
import { table } from "../lib/table";
import { failure, type PageContext } from "./page";

/** `/dlq`: dead letters grouped by queue and reason; redrive one letter or a group, after a confirmation. */

async function redrive(
  ctx: PageContext,
  notice: HTMLElement,
  body: { queue: string; id?: string; reason?: string },
  what: string,
) {
  const ok = await ctx.confirm(
    `Redrive ${what}?`,
    `The message${body.id ? "" : "s"} go back to ${body.queue}, visible at once, with a fresh receive count. If the cause is not fixed, ${body.id ? "it comes" : "they come"} back here.`,
    "Redrive",
  );
  if (!ok) return;
  try {
    const r = await postJson("/api/dlq/redrive", body, RedriveResult);
    mount(
      notice,
      h(
        "p",
        { class: "notice", role: "status" },
        `Redrove ${num(r.moved)} message${r.moved === 1 ? "" : "s"} to ${body.queue}.`,
      ),
    );
  } catch (err) {
    mount(notice, h("p", { class: "notice error", role: "alert" }, failure(err)));
  }
  await load(ctx, notice);
}

function letterRow(
  ctx: PageContext,
  notice: HTMLElement,
  g: DlqGroup,
  l: DeadLetterView,
  at: string,
) {
  return h(
    "tr",
    { "data-letter": l.id },
    h("td", { class: "num" }, l.id),
    h(
      "td",
      {},
      l.task_id
        ? h(
            "a",
            { href: `/tasks/${l.task_id}`, "data-link": true, class: "mono", title: l.task_id },
            shortId(l.task_id),
          )
        : "—",
    ),
    h("td", { class: "num" }, num(l.receive_count)),
    h("td", {}, when(l.created_at, at)),
    h(
      "td",
      { class: "num" },
      h(
        "button",
        {
          class: "small",
          "data-redrive": l.id,
          onclick: () => void redrive(ctx, notice, { queue: g.queue, id: l.id }, `message ${l.id}`),
        },
        "Redrive",
      ),
    ),
  );
}

function groupHead(ctx: PageContext, notice: HTMLElement, g: DlqGroup) {
  return h(
    "div",
    { class: "group-head" },
    h("span", { class: "pill dead" }, g.queue),
    h("span", { class: "reason" }, g.reason),
    h(
      "button",
      {
        class: "primary",
        "data-redrive-group": g.queue,
        onclick: () =>
          void redrive(
            ctx,
            notice,
            { queue: g.queue, reason: g.reason },
            `${num(g.count)} message${g.count === 1 ? "" : "s"} of this group`,
          ),
      },
      `Redrive ${num(g.count)}`,
    ),
  );
}

function group(ctx: PageContext, notice: HTMLElement, g: DlqGroup, at: string) {
  const receives =
    g.receives.min === g.receives.max
      ? num(g.receives.min)
      : `${num(g.receives.min)}–${num(g.receives.max)}`;
  return h(
    "article",
    { class: "group", "data-group": g.queue },
    groupHead(ctx, notice, g),
    h(
      "p",
      { class: "group-meta" },
      `${num(g.count)} letter${g.count === 1 ? "" : "s"} · received ${receives} time${g.receives.max === 1 ? "" : "s"} · newest `,
      when(g.letters.at(-1)?.created_at ?? g.sample.created_at, at, true),
    ),
    h(
      "details",
      {},
      h("summary", {}, `Sample: message ${g.sample.id}`),
      h("pre", {}, `reason: ${g.sample.reason}\n\n${g.sample.payload}`),
    ),
    h(
      "details",
      { open: g.count <= 5 },
      h("summary", {}, `Letters (${num(g.count)})`),
      table(
        ["Id", "Task", "Receives", "Dead since", ""],
        new Set(["Id", "Receives"]),
        g.letters.map((l) => letterRow(ctx, notice, g, l, at)),
        "No letters.",
      ),
    ),
  );
}

async function load(ctx: PageContext, notice: HTMLElement): Promise<void> {
  const list = ctx.root.querySelector("#dlq-groups");
  if (list === null) return;
  try {
    const d = await getJson("/api/dlq", Dlq, ctx.signal);
    ctx.live(true, "live");
    const total = Object.values(d.dead).reduce((a, b) => a + b, 0);
    const summary = Object.entries(d.dead)
      .map(([q, n]) => `${q} ${num(n)}`)
      .join(" · ");
    mount(
      list,
      h(
        "p",
        { class: "sub" },
        total === 0
          ? "No dead letters."
          : `${num(total)} dead letter${total === 1 ? "" : "s"} (${summary})${d.listed < total ? `; the oldest ${num(d.listed)} are listed` : ""}.`,
      ),
      d.groups.map((g) => group(ctx, notice, g, d.at)),
    );
  } catch (err) {
    if (!ctx.signal.aborted) mount(list, h("p", { class: "notice error" }, failure(err)));
  }
}

export function dlqPage(ctx: PageContext): void {
  const notice = h("div", { id: "dlq-notice" });
  mount(
    ctx.root,
    h("h1", {}, "Dead letters"),
    notice,
    h("div", { id: "dlq-groups" }, h("p", { class: "sub" }, "Loading…")),
  );
  void load(ctx, notice);
}
