import { describe, expect, test } from "bun:test";
import { dedupeKey } from "../../../src/worker/alerts";
import { checkLine } from "../../../src/worker/exec/check";

const ctx = { taskId: "0b8f3c1e-6a4d-4c1b-9f7e-2d5a8b9c0e1f", orgId: "acme" };
const base = { source: "s", severity: "low", title: "t", occurred_at: "2024-01-01T00:00:00Z" };
const check = (value: unknown, index = 0) =>
  checkLine(
    new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value)),
    index,
    ctx,
  );

describe("checkLine", () => {
  test("fills org_id and a dedupe key from task id and index, and keeps an explicit key", () => {
    const r = check(base, 41);
    expect(r.ok && JSON.parse(r.json)).toEqual({
      ...base,
      org_id: "acme",
      dedupe_key: dedupeKey(ctx.taskId, 41),
    });
    const own = check({ ...base, org_id: "acme", dedupe_key: "k" }, 3);
    expect(own.ok && JSON.parse(own.json)).toMatchObject({ dedupe_key: "k", org_id: "acme" });
  });

  test("refusals name the line (index + 1) and why", () => {
    const reasons = [
      check("{not json", 0),
      check([1, 2], 1),
      check({ ...base, org_id: "globex" }, 2),
      check({ ...base, severity: "urgent" }, 3),
      check({ ...base, extra: 1 }, 4),
      check({ ...base, title: "\u0000" }, 5),
      checkLine(new Uint8Array([0x7b, 0xff, 0x7d]), 6, ctx),
    ].map((r) => (r.ok ? "ok" : r.reason));
    expect(reasons[0]).toStartWith("line 1 is not JSON");
    expect(reasons[1]).toBe("line 2 is not a JSON object");
    expect(reasons[2]).toBe(`line 3 claims org_id "globex", not the task's org "acme"`);
    expect(reasons[3]).toStartWith("line 4 breaks the AlertLine contract");
    expect(reasons[3]).toContain("severity");
    expect(reasons[4]).toStartWith("line 5 breaks the AlertLine contract");
    expect(reasons[5]).toBe(
      "line 6 contains U+0000 or a lone surrogate, which the database cannot store",
    );
    expect(reasons[6]).toBe("line 7 is not valid UTF-8");
  });
});
