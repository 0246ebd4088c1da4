import { describe, expect, test } from "bun:test";
import { useFreshDatabase } from "../support/db";
import { runHarness, spawnHarness } from "../support/processes";
import { waitFor } from "../support/wait";

const db = useFreshDatabase();

describe("harness status --watch", () => {
  test("refreshes every second with current counts and stops cleanly on SIGINT", async () => {
    const env = { DATABASE_URL: db().url };
    const watch = spawnHarness("status-watch", ["status", "--watch"], env);
    try {
      await waitFor(() => watch.stdout().includes("queued 0"), { what: "the first table" });
      const created = await runHarness(
        ["task", "create", "--org", "watch", "--alerts", "1", "--count", "3"],
        env,
      );
      expect(created.code).toBe(0);
      await waitFor(() => watch.stdout().includes("queued 3"), {
        what: "a refresh showing the new tasks",
        timeoutMs: 5000,
      });
      expect(watch.stdout().match(/^tasks /gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    } finally {
      expect(await watch.stop("SIGINT")).toBe(0);
    }
  });

  test("--watch with --json is refused", async () => {
    const r = await runHarness(["status", "--watch", "--json"], { DATABASE_URL: db().url });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--watch and --json");
  });
});
