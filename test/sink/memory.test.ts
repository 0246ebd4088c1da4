import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { MAX_LINE_BYTES } from "../../src/contracts/alert";
import { useFreshDatabase } from "../support/db";
import { spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";
import {
  alert,
  deadLetterOf,
  publishBatchMessage,
  putBatch,
  rowCount,
  useTempStore,
} from "./helpers";

/**
 * The sink holds one line of a batch at a time: five concurrent 60 MB
 * single-line batches (the issue's attack: 1.9 GB before) are refused at
 * their first MiB, and a real sink process stays far under 512 MB.
 * Valid 60 MB batches take minutes, so they are measured by
 * bench/sink-memory.ts, not here.
 */

const db = useFreshDatabase();
const store = useTempStore();
const MB = 1024 * 1024;

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

describe("sink memory (real process)", () => {
  test("five concurrent 60 MB single-line batches: each dead-lettered at once, peak RSS far under 512 MB", async () => {
    const sql = db().sql;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const head = JSON.stringify(alert("acme", `big-${i}`, { attributes: { pad: "" } }));
      const body = `${head.replace('"pad":""', `"pad":"${"x".repeat(60 * MB)}"`)}\n`;
      ids.push(await publishBatchMessage(db().queue(), await putBatch(store().store, body)));
    }
    const sink = spawnHarness("sink", ["sink"], {
      DATABASE_URL: db().url,
      OBJECT_STORE_URL: store().url,
      VISIBILITY_TIMEOUT_MS: "60000",
      LOG_LEVEL: "warn",
    });
    try {
      await waitFor(
        async () => {
          const [r] = await sql`
            SELECT count(*)::int AS n FROM state.queue_messages WHERE queue_name = 'buffer_queue.dlq'`;
          return r?.n === 5;
        },
        { what: "five dead letters", timeoutMs: 60_000 },
      );
      const peak = peakRssMb(sink.proc.pid);
      expect(peak).toBeLessThan(256);
    } finally {
      expect(await sink.stop()).toBe(0);
    }
    for (const id of ids) {
      expect(await deadLetterOf(sql, id)).toBe(`line 1: longer than ${MAX_LINE_BYTES} bytes`);
    }
    const [retried] = await sql`
      SELECT max(receive_count)::int AS n FROM state.queue_messages WHERE queue_name = 'buffer_queue.dlq'`;
    expect(retried?.n).toBe(1);
    expect(await rowCount(sql)).toBe(0);
  }, 120_000);
});
