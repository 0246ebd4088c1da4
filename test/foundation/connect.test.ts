import { describe, expect, test } from "bun:test";
import { connect } from "../../src/db/connect";
import { testServer } from "../support/db";

/** Session settings a pool asks for at connection time (src/db/connect.ts). */

async function planCacheMode(genericPlans: boolean | undefined): Promise<unknown> {
  const { admin } = await testServer();
  const sql = connect(admin, { name: "test-connect", max: 1, genericPlans });
  try {
    const [row] = await sql`SHOW plan_cache_mode`;
    return row?.plan_cache_mode;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe("connect", () => {
  test("genericPlans: every session of the pool plans a prepared statement once", async () => {
    expect(await planCacheMode(true)).toBe("force_generic_plan");
  });

  test("without it, PostgreSQL's default choice between generic and custom plans", async () => {
    expect(await planCacheMode(undefined)).toBe("auto");
  });
});
