import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EXEC_STARTED } from "../../src/worker/exec/run";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";
import { removeTempDirs, tempDir } from "../worker/exec/helpers";

/**
 * `harness verify --exec`: the whole chaos schedule with real task programs
 * doing the work (examples/synthetic.sh makes the alerts the checker expects).
 */

const db = useFreshDatabase();
const SYNTHETIC = resolve(import.meta.dir, "../../examples/synthetic.sh");

test("verify --exec examples/synthetic.sh --chaos 1: every invariant holds, the programs did the work", async () => {
  const logs = tempDir("harness-exec-verify-logs-");
  try {
    const r = await runHarness(
      [
        "verify",
        "--exec",
        SYNTHETIC,
        "--tasks",
        "20",
        "--alerts",
        "5",
        "--chaos",
        "1",
        "--json",
        "--logs",
        logs,
      ],
      { DATABASE_URL: db().url, LOG_LEVEL: "info" },
    );
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr.slice(-2000) }).toEqual({
      code: 0,
      stderr: "",
    });
    expect(JSON.parse(r.stdout)).toMatchObject({
      seed: 1,
      exec: [SYNTHETIC],
      timedOut: false,
      check: { ok: true, tasks: { total: 20, succeeded: 20 }, rows: { expected: 100, found: 100 } },
    });
    const started = readdirSync(logs)
      .filter((f) => f.startsWith("worker-"))
      .flatMap((f) => readFileSync(join(logs, f), "utf8").split("\n"))
      .filter((l) => l.includes(`"msg":"${EXEC_STARTED}"`));
    expect(started.length).toBeGreaterThanOrEqual(20);
  } finally {
    removeTempDirs();
  }
}, 150_000);
