import { h } from "./dom";

/**
 * A scrolling table of `rows` under the header `head` (the headers in
 * `numeric` right-aligned), or the `empty` sentence when there are none.
 */
export function table(head: string[], numeric: Set<string>, rows: Node[], empty: string) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          head.map((t) => h("th", { class: numeric.has(t) ? "num" : "" }, t)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}
