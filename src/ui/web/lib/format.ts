import type { Count } from "../../contract";
import { h } from "./dom";

/** Numbers with thousands separators; times relative (to the server's clock) and absolute. */

const numbers = new Intl.NumberFormat("en-US");
const decimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

export const num = (n: number): string => numbers.format(n);
export const rate = (n: number): string => decimals.format(n);

export function count(c: Count): string {
  return c.exact ? num(c.n) : `≈ ${num(c.n)}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${num(n)} B`;
  if (n < 1024 * 1024) return `${decimals.format(n / 1024)} KiB`;
  return `${decimals.format(n / 1024 / 1024)} MiB`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Local time, `2026-12-01 11:20:09`. */
export function absolute(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `12 s ago`, `in 3 min`, relative to `now` (an ISO time from the server). */
export function relative(iso: string, now: string): string {
  const seconds = (Date.parse(now) - Date.parse(iso)) / 1000;
  const a = Math.abs(seconds);
  if (a < 1.5) return "just now";
  const text =
    a < 90
      ? `${Math.round(a)} s`
      : a < 90 * 60
        ? `${Math.round(a / 60)} min`
        : a < 36 * 3600
          ? `${Math.round(a / 3600)} h`
          : `${Math.round(a / 86400)} d`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** A `<time>` with the relative time and, below (or beside), the absolute one. */
export function when(iso: string | null, now: string, inline = false): HTMLElement {
  if (iso === null) return h("span", { class: "zero" }, "—");
  const el = h(
    "time",
    { datetime: iso, title: new Date(iso).toString() },
    relative(iso, now),
    h("span", { class: "abs" }, absolute(iso)),
  );
  return inline ? h("span", { class: "inline" }, el) : el;
}

export const shortId = (id: string): string => id.slice(0, 8);
