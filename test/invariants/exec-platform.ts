import { expect } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Role } from "../support/processes";
import { tempDir } from "../worker/exec/helpers";
import type { TestPlatform } from "./platform";

/** What the `worker --exec` scenarios look at: attempts, rows, published batches, leftover objects. */

/** An alert line with this dedupe key (the wrapper adds org_id). */
export const LINE = (key: string) =>
  `{"dedupe_key":"${key}","source":"exec","severity":"low","title":"line ${key}","occurred_at":"2024-01-01T00:00:00Z"}`;

/** A worker running `cmd` for each attempt; its programs' folders in a temporary TMPDIR (a kill -9 leaves them). */
export function execWorker(p: TestPlatform, cmd: string, extra: string[] = []): Role {
  return p.startWorker(["--exec", cmd, "--concurrency", "1", "--grace-ms", "500", ...extra], {
    TMPDIR: tempDir("harness-exec-tmp-"),
  });
}

/** The attempts of a task as the dispatcher recorded them. */
export async function attempts(p: TestPlatform, taskId: string) {
  return p.state.sql<{ attempt: number; outcome: string | null; reason: string | null }[]>`
    SELECT attempt, outcome::text AS outcome, reason FROM state.task_attempts
    WHERE task_id = ${taskId}::uuid ORDER BY attempt`;
}

export async function task(p: TestPlatform, taskId: string) {
  const [t] = await p.state.sql<{ status: string; attempt: number }[]>`
    SELECT status::text AS status, attempt FROM state.tasks WHERE id = ${taskId}::uuid`;
  return t;
}

export async function rowKeys(p: TestPlatform, org: string): Promise<string[]> {
  const rows = await p.data.sql<{ dedupe_key: string }[]>`
    SELECT dedupe_key FROM data.alert_events WHERE org_id = ${org} ORDER BY dedupe_key`;
  return rows.map((r) => r.dedupe_key);
}

export async function publishedAttempts(p: TestPlatform, taskId: string): Promise<number[]> {
  const rows = await p.state.sql<{ attempt: number }[]>`
    SELECT attempt FROM state.outbox WHERE task_id = ${taskId}::uuid AND queue_name = 'buffer_queue'`;
  return rows.map((r) => r.attempt);
}

/** Objects (finished or not) an attempt left in the store. */
export function objectsOf(p: TestPlatform, org: string, taskId: string, attempt: number): string[] {
  try {
    return readdirSync(join(p.objectDir, org, taskId)).filter(
      (f) => f.startsWith(`${attempt}-`) || f.startsWith(".tmp-"),
    );
  } catch {
    return [];
  }
}

export async function finished(
  p: TestPlatform,
  org: string,
  ids: string[],
  worker: Role,
): Promise<void> {
  try {
    await p.waitQuiet(org, ids, 45_000);
  } finally {
    expect(await worker.stop("SIGTERM")).toBe(0);
  }
}
