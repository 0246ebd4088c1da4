import { describe, expect, test } from "bun:test";
import { useFreshDatabase } from "../support/db";
import { runHarness } from "../support/processes";

// `harness task create`, `harness status` and `harness keygen` as real processes.
const db = useFreshDatabase();
const env = () => ({ DATABASE_URL: db().url });

describe("task, status and keygen commands", () => {
  test("task create prints one id per line; each task has its wakeup outbox row", async () => {
    const r = await runHarness(
      ["task", "create", "--org", "acme", "--alerts", "3", "--work-ms", "10", "--count", "3"],
      env(),
    );
    expect(r.code, r.stderr).toBe(0);
    const ids = r.stdout.trim().split("\n");
    expect(ids).toHaveLength(3);
    const rows = await db().sql`
      SELECT t.id::text AS id, t.org_id, t.status, t.attempt, t.payload, o.queue_name, o.payload AS wakeup
      FROM state.tasks t JOIN state.outbox o ON o.task_id = t.id WHERE t.id = ANY(${ids}::uuid[])`;
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row).toMatchObject({
        org_id: "acme",
        status: "queued",
        attempt: 0,
        queue_name: "task_wakeup",
      });
      expect(row.payload).toEqual({ alerts: 3, work_ms: 10 });
      expect(row.wakeup).toEqual({ task_id: row.id });
    }
    const explicit = await runHarness(
      [
        "task",
        "create",
        "--org",
        "acme",
        "--payload",
        '{"alerts":[{"source":"s","severity":"high","title":"t","occurred_at":"2024-01-01T00:00:00Z"}]}',
      ],
      env(),
    );
    expect(explicit.code, explicit.stderr).toBe(0);
    expect(explicit.stdout.trim().split("\n")).toHaveLength(1);
    // A task for `worker --exec`: any JSON object up to 64 KiB, stored as given.
    const exec = await runHarness(
      ["task", "create", "--org", "acme", "--payload", '{"hosts":["db-1"],"threshold":90}'],
      env(),
    );
    expect(exec.code, exec.stderr).toBe(0);
    const [stored] = await db()
      .sql`SELECT payload FROM state.tasks WHERE id = ${exec.stdout.trim()}`;
    expect(stored?.payload).toEqual({ hosts: ["db-1"], threshold: 90 });
  }, 20_000);

  test("task create refuses a bad payload, a bad org and unknown flags with exit 2 and writes nothing", async () => {
    const [before] = await db().sql`SELECT count(*)::int AS n FROM state.tasks`;
    for (const args of [
      ["--org", "acme", "--payload", '[{"alerts":1}]'],
      ["--org", "acme", "--payload", JSON.stringify({ pad: "x".repeat(64 * 1024) })],
      ["--org", "acme", "--payload", "{nope"],
      ["--org", "bad org!", "--alerts", "1"],
      ["--org", "acme", "--alerts", "-1"],
      ["--org", "acme"],
      ["--org", "acme", "--alerts", "1", "--nope"],
    ]) {
      const r = await runHarness(["task", "create", ...args], env());
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    const [after] = await db().sql`SELECT count(*)::int AS n FROM state.tasks`;
    expect(after?.n).toBe(before?.n);
  }, 30_000);

  test("status --json reports tasks, queues, the outbox and alert rows", async () => {
    await db().sql`DELETE FROM state.outbox`;
    await db().sql`DELETE FROM state.tasks`;
    await runHarness(["task", "create", "--org", "acme", "--alerts", "1", "--count", "3"], env());
    await db().sql`
      UPDATE state.outbox SET status = 'rejected', error = 'refused'
      WHERE id = (SELECT min(id) FROM state.outbox)`;
    await db()
      .sql`INSERT INTO state.queue_messages (queue_name, payload) VALUES ('buffer_queue.dlq', '{}')`;
    await db()
      .sql`INSERT INTO data.sink_batches (task_id, org_id, attempt, batch_uri, rows_inserted, rows_skipped)
      VALUES (gen_random_uuid(), 'acme', 1, 'file:///x', 5, 2)`;
    const r = await runHarness(["status", "--json"], env());
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.tasks).toEqual({ queued: 3, running: 0, succeeded: 0, failed: 0 });
    expect(s.outbox).toEqual({ pending: 2, rejected: 1 });
    expect(s.alerts).toEqual({ rows: 0, batches: 1, inserted: 5, skipped: 2 });
    expect(s.queues.find((q: { queue: string }) => q.queue === "buffer_queue")).toMatchObject({
      dead: 1,
    });
    const text = await runHarness(["status"], env());
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("queued 3");
    expect(text.stdout).toContain("pending 2  rejected 1");
  }, 20_000);

  test("keygen prints a private Ed25519 JWK with a kid", async () => {
    const r = await runHarness(["keygen"], {});
    expect(r.code, r.stderr).toBe(0);
    const jwk = JSON.parse(r.stdout);
    expect(jwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    for (const k of ["x", "d", "kid"]) expect(typeof jwk[k]).toBe("string");
  });
});
