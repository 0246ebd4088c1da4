import { s } from "./dom";
import { rate } from "./format";

/**
 * A small SVG area chart of one per-second rate over time, drawn by hand
 * (no library): the series is per-bucket totals, oldest first, shown as
 * totals / bucketSeconds.
 */

const W = 600;
const H = 150;
const PAD = { left: 52, right: 8, top: 12, bottom: 26 };

/** A round upper bound for the axis: 1, 2 or 5 × 10^k. */
export function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** Runs of consecutive known points, as `x,y` strings: an unknown bucket breaks the line. */
function runs(rates: Array<number | null>, x: (i: number) => number, y: (r: number) => number) {
  const out: string[][] = [];
  let run: string[] = [];
  rates.forEach((r, i) => {
    if (r === null) {
      if (run.length) out.push(run);
      run = [];
    } else run.push(`${x(i).toFixed(1)},${y(r).toFixed(1)}`);
  });
  if (run.length) out.push(run);
  return out;
}

export function rateChart(
  totals: Array<number | null>,
  bucketSeconds: number,
  o: { line: "line-a" | "line-b"; label: string },
): SVGSVGElement {
  const rates = totals.map((t) => (t === null ? null : t / bucketSeconds));
  const top = niceMax(Math.max(0, ...rates.map((r) => r ?? 0)));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (rates.length <= 1 ? iw : (i / (rates.length - 1)) * iw);
  const y = (r: number) => PAD.top + ih - (r / top) * ih;
  const base = y(0).toFixed(1);
  const lines = runs(rates, x, y);
  const minutes = Math.round((rates.length * bucketSeconds) / 60);
  const ticks = [0, 1 / 3, 2 / 3, 1];
  return s(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": o.label },
    [0, 0.5, 1].map((f) => [
      s("line", {
        class: "grid-line",
        x1: PAD.left,
        x2: W - PAD.right,
        y1: y(top * f),
        y2: y(top * f),
      }),
      s(
        "text",
        { class: "axis", x: PAD.left - 6, y: y(top * f) + 4, "text-anchor": "end" },
        rate(top * f),
      ),
    ]),
    ticks.map((f) =>
      s(
        "text",
        {
          class: "axis",
          x: PAD.left + f * iw,
          y: H - 6,
          "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle",
        },
        f === 1 ? "now" : `−${Math.round(minutes * (1 - f))} min`,
      ),
    ),
    lines.map((run) => {
      const [x0] = (run[0] ?? "0,0").split(",");
      const [x1] = (run.at(-1) ?? "0,0").split(",");
      return [
        o.line === "line-a"
          ? s("path", { class: "area-a", d: `M${x0},${base} L${run.join(" L")} L${x1},${base} Z` })
          : null,
        s("polyline", { class: o.line, points: run.join(" ") }),
      ];
    }),
  );
}
