import { type AttemptView, TaskDetail } from "../../contract";
import { ApiFailure, getJson } from "../lib/api";
import { h, mount } from "../lib/dom";
import { bytes, num, shortId, when } from "../lib/format";
import { table } from "../lib/table";
import { type PageContext, poll } from "./page";
import { statusPills } from "./tasks";

/** `/tasks/:id`: the task, its payload, its attempts as a timeline, its outbox rows and batches. */

const REFRESH_MS = 2000;

function fact(label: string, value: Node | string) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

/** The file name of a batch URI, with the whole URI as its tooltip. */
export function batchName(uri: string | null) {
  if (uri === null) return "";
  return h("span", { class: "mono", title: uri }, uri.slice(uri.lastIndexOf("/") + 1));
}

function facts(d: TaskDetail) {
  const t = d.task;
  return h(
    "section",
    { class: "panel" },
    h(
      "dl",
      { class: "facts" },
      fact("Status", h("span", {}, statusPills(t))),
      fact("Org", t.org_id),
      fact("Attempts", num(t.attempt)),
      fact("Created", when(t.created_at, d.at)),
      fact(t.finished_at ? "Finished" : "Updated", when(t.finished_at ?? t.updated_at, d.at)),
      t.status === "running"
        ? fact(t.lease_expired ? "Lease expired" : "Lease expires", when(t.lease_expires_at, d.at))
        : null,
      t.last_error ? fact("Last error", h("span", { class: "mono" }, t.last_error)) : null,
    ),
  );
}

function payload(d: TaskDetail) {
  const p = d.payload;
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Payload", h("small", {}, bytes(p.bytes))),
    h(
      "dl",
      { class: "facts" },
      fact("Keys", p.keys.length ? p.keys.join(", ") : "—"),
      p.alerts === null ? null : fact("Alerts", num(p.alerts)),
      p.work_ms === null ? null : fact("Work", `${num(p.work_ms)} ms`),
    ),
    h("pre", {}, p.preview, p.truncated ? "\n…" : ""),
  );
}

function fenceNote(a: AttemptView, d: TaskDetail) {
  if (a.outcome !== "fenced") return null;
  const wrote = a.writes_after_fence ?? 0;
  const next = d.attempts.find((x) => x.attempt === a.attempt + 1);
  return h(
    "p",
    { class: `fence-note ${wrote > 0 ? "bad" : ""}`, "data-fence": a.attempt },
    h("strong", {}, "Fenced out. "),
    next
      ? `Its lease expired and attempt ${next.attempt} was claimed `
      : "A newer attempt was claimed ",
    a.ended_at ? when(a.ended_at, d.at, true) : "",
    ". From then on every heartbeat, buffer-publish and complete of this attempt is refused with 409. ",
    wrote === 0
      ? "It wrote nothing after that."
      : `It wrote ${num(wrote)} outbox row(s) after that: an invariant is broken.`,
  );
}

function attempt(a: AttemptView, d: TaskDetail) {
  return h(
    "li",
    { class: `attempt ${a.outcome}`, "data-attempt": a.attempt, "data-outcome": a.outcome },
    h("span", { class: "node" }),
    h(
      "div",
      { class: "attempt-head" },
      h("h3", {}, `Attempt ${a.attempt}`),
      h(
        "span",
        {
          class: `pill ${a.outcome}`,
          title:
            a.outcome_source === "derived"
              ? "derived from the task, its outbox rows and the next claim"
              : "as recorded",
        },
        a.outcome === "fenced" ? "fenced out" : a.outcome,
      ),
      h(
        "span",
        { class: "meta" },
        "lease ",
        h("code", {}, shortId(a.lease_token)),
        ` · ${num(a.batches_published)} batch${a.batches_published === 1 ? "" : "es"} · ${num(a.rows_ingested)} rows ingested`,
      ),
    ),
    fenceNote(a, d),
    h(
      "ul",
      { class: "events" },
      a.events.map((e) =>
        h(
          "li",
          { class: e.kind },
          h("span", { class: "when" }, e.at ? when(e.at, d.at) : "—"),
          h("span", { class: "what" }, e.text),
        ),
      ),
    ),
  );
}

function outbox(d: TaskDetail) {
  const rows = d.outbox.map((o) =>
    h(
      "tr",
      { "data-outbox": o.id },
      h("td", { class: "num" }, o.id),
      h("td", { class: "mono" }, o.queue),
      h("td", { class: "num" }, o.attempt === null ? "—" : num(o.attempt)),
      h("td", {}, h("span", { class: `pill ${o.status}` }, o.status)),
      h("td", {}, when(o.created_at, d.at)),
      h("td", {}, when(o.sent_at, d.at)),
      h("td", {}, batchName(o.batch_uri)),
    ),
  );
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Outbox rows", h("small", {}, "written with each call, published by the drainer")),
    table(
      ["Id", "Queue", "Attempt", "State", "Written", "Published", "Batch"],
      new Set(["Id", "Attempt"]),
      rows,
      "No outbox row.",
    ),
  );
}

function batches(d: TaskDetail) {
  const total = d.batches.reduce((sum, b) => sum + b.rows_inserted, 0);
  const rows = d.batches.map((b) =>
    h(
      "tr",
      { "data-batch": b.id },
      h("td", {}, batchName(b.batch_uri)),
      h("td", { class: "num" }, num(b.attempt)),
      h("td", { class: "num" }, num(b.rows_inserted)),
      h("td", { class: `num ${b.rows_skipped === 0 ? "zero" : ""}` }, num(b.rows_skipped)),
      h("td", {}, when(b.committed_at, d.at)),
    ),
  );
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Batches ingested", h("small", {}, `${num(total)} rows`)),
    table(
      ["Batch", "Attempt", "Rows", "Duplicates", "Committed"],
      new Set(["Attempt", "Rows", "Duplicates"]),
      rows,
      "No batch ingested yet.",
    ),
  );
}

function render(ctx: PageContext, d: TaskDetail) {
  mount(
    ctx.root,
    h("h1", {}, "Task"),
    h("p", { class: "sub" }, h("span", { class: "mono", id: "task-id" }, d.task.id)),
    facts(d),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Attempts", h("small", {}, "each claim, its lease, what it wrote, how it ended")),
      d.attempts.length === 0
        ? h("p", { class: "empty" }, "Not claimed yet.")
        : h(
            "ol",
            { class: "attempts", id: "attempts" },
            d.attempts.map((a) => attempt(a, d)),
          ),
    ),
    batches(d),
    outbox(d),
    payload(d),
  );
}

export function taskPage(ctx: PageContext): void {
  const id = ctx.params[0] ?? "";
  mount(ctx.root, h("h1", {}, "Task"), h("p", { class: "sub" }, "Loading…"));
  poll(ctx, REFRESH_MS, async () => {
    try {
      render(ctx, await getJson(`/api/tasks/${encodeURIComponent(id)}`, TaskDetail, ctx.signal));
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 404) {
        mount(ctx.root, h("h1", {}, "Task"), h("p", { class: "notice error" }, `No task ${id}.`));
        return;
      }
      throw err;
    }
  });
}
