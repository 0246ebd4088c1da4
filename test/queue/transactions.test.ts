import { describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { useFreshDatabase } from "../support/db";

/**
 * Every fencing check runs in `sql.begin`. With more concurrent callers than
 * pool connections, each transaction must still run whole and commit — this
 * failed (UNSAFE_TRANSACTION) with postgres.js `max_pipeline: 1`.
 */

const db = useFreshDatabase();

describe("connection pool", () => {
  test("8 callers on a pool of 4: every transaction commits, none refused", async () => {
    const sql = connect(db().url, { name: "test-pool", max: 4 });
    try {
      await sql`CREATE TABLE IF NOT EXISTS pool_probe (id serial PRIMARY KEY, caller int)`;
      const failures: string[] = [];
      let committed = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, caller) => {
          for (let i = 0; i < 100; i++) {
            try {
              if (i % 2 === 0) {
                await sql.begin(async (tx) => {
                  await tx`INSERT INTO pool_probe (caller) VALUES (${caller})`;
                  await tx`SELECT 1`;
                });
                committed++;
              } else await sql`SELECT 1`;
            } catch (err) {
              failures.push(String(err));
            }
          }
        }),
      );
      expect(failures.slice(0, 3)).toEqual([]);
      const [row] = await sql`SELECT count(*)::int AS n FROM pool_probe`;
      expect(row?.n).toBe(committed);
      expect(committed).toBe(400);
    } finally {
      await sql.end();
    }
  });
});
