import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { MAX_TASK_PAYLOAD_BYTES, TaskPayload } from "../../src/contracts/task";

/** The one rule of task_payload its JSON Schema cannot say (a `$comment` does). */
describe("task_payload's size limit", () => {
  const sized = (bytes: number) => ({ pad: "é".repeat((bytes - '{"pad":""}'.length) / 2) });

  test("64 KiB as UTF-8 JSON passes, one byte more does not", () => {
    const exact = sized(MAX_TASK_PAYLOAD_BYTES);
    expect(new TextEncoder().encode(JSON.stringify(exact)).byteLength).toBe(MAX_TASK_PAYLOAD_BYTES);
    expect(v.is(TaskPayload, exact)).toBe(true);
    const over = { ...exact, x: 1 };
    const r = v.safeParse(TaskPayload, over);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.issues[0]?.message).toBe("must be at most 65536 bytes as JSON");
  });
});
