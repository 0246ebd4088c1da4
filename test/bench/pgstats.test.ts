import { describe, expect, test } from "bun:test";
import { PgCounter, pgPerTask } from "../../bench/lib/pgstats";
import { connect } from "../../src/db/connect";
import { testServer, useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";

/**
 * The statements-and-commits-per-task figures of the end-to-end benchmarks
 * (bench/lib/pgstats.ts): on a real server, the statements and commits other
 * sessions made between the two snapshots are what comes out, the bench's
 * own (counted) statements taken off; and without pg_stat_statements the
 * statements are reported as missing, not as zero.
 */

const db = useFreshDatabase();

describe("bench statements and commits per task", () => {
  test("counts the other sessions' statements and commits, not the bench's own", async () => {
    // The fixture's pool is a session on the database too: ended, and its backend gone
    // (it flushes its counts on its way out), before the first snapshot.
    await db().sql.end({ timeout: 1 });
    const admin = connect((await testServer()).admin, { name: "pgstats-admin", max: 1 });
    try {
      await waitFor(
        async () => {
          const [r] = await admin`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db().name}`;
          return r?.n === 0;
        },
        { what: "the fixture's session to end", timeoutMs: 10_000, intervalMs: 10 },
      );
    } finally {
      await admin.end({ timeout: 1 });
    }
    const counter = await PgCounter.open(db().url);
    try {
      const mine = connect(db().url, { name: "pgstats-mine", max: 1 });
      const other = connect(db().url, { name: "pgstats-test", max: 2 });
      // 20 autocommit statements, then 5 transactions of BEGIN, 2 statements, COMMIT,
      // with the bench's own polls counted in between.
      for (let i = 0; i < 20; i++) {
        await other`SELECT ${i}::int AS n`;
        await counter.run(() => mine`SELECT ${i}::int AS poll`);
      }
      for (let i = 0; i < 5; i++) {
        await other.begin(async (tx) => {
          await tx`SELECT 1 AS a`;
          await tx`SELECT 2 AS b`;
        });
      }
      await Promise.all([other.end({ timeout: 1 }), mine.end({ timeout: 1 })]);
      const per = await counter.finish(5);
      // 25 commits, plus two per connection (mine, and other's one or two): the
      // backend's start-up transaction and postgres.js's type look-up. The 20 own
      // polls and the counter's statements are not there.
      expect(per.commits_per_task * 5).toBeGreaterThanOrEqual(25 + 2 * 2);
      expect(per.commits_per_task * 5).toBeLessThanOrEqual(25 + 2 * 3);
      if (per.pg_stat_statements === 1) {
        // 20 + 5 × 2, and BEGIN (pg_stat_statements does not see every COMMIT postgres.js
        // sends), and the type look-ups.
        expect(per.statements_per_task * 5).toBeGreaterThanOrEqual(30);
        expect(per.statements_per_task * 5).toBeLessThanOrEqual(40 + 3);
      } else {
        expect(per.statements_per_task).toBeNaN();
      }
    } finally {
      await counter.close();
    }
  });

  test("without pg_stat_statements, or when it evicted entries, there is no statement figure", () => {
    const none = { commits: 10, statements: undefined, dealloc: undefined };
    const r = pgPerTask(none, { ...none, commits: 30 }, 2, 6);
    expect(r.statements_per_task).toBeNaN();
    expect(r.pg_stat_statements).toBe(0);
    expect(r.commits_per_task).toBe(3);
    const evicted = pgPerTask(
      { commits: 0, statements: 100, dealloc: 1 },
      { commits: 10, statements: 200, dealloc: 2 },
      0,
      10,
    );
    expect(evicted.statements_per_task).toBeNaN();
    expect(evicted.pg_stat_statements_evicted).toBe(1);
  });
});
