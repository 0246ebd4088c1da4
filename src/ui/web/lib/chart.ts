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

export function rateChart(
  totals: number[],
  bucketSeconds: number,
  o: { line: "line-a" | "line-b"; label: string },
): SVGSVGElement {
  const rates = totals.map((t) => t / bucketSeconds);
  const top = niceMax(Math.max(...rates, 0));
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (rates.length <= 1 ? iw : (i / (rates.length - 1)) * iw);
  const y = (r: number) => PAD.top + ih - (r / top) * ih;
  const points = rates.map((r, i) => `${x(i).toFixed(1)},${y(r).toFixed(1)}`);
  const base = y(0).toFixed(1);
  const area = `M${x(0).toFixed(1)},${base} L${points.join(" L")} L${x(rates.length - 1).toFixed(1)},${base} Z`;
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
    o.line === "line-a" ? s("path", { class: "area-a", d: area }) : null,
    s("polyline", { class: o.line, points: points.join(" ") }),
  );
}
