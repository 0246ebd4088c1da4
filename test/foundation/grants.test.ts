import { describe, expect, test } from "bun:test";
import { migrateDatabase } from "../../src/db/migrate";
import { useFreshDatabase } from "../support/db";

/**
 * The grant table the README's security model states, read back from
 * PostgreSQL's own privilege functions on a migrated database: each group,
 * each table, each queue function. Written out here, not derived from
 * src/db/grants.ts, so a change there that the model does not say fails.
 */

const db = useFreshDatabase();

const GROUPS = [
  "harness_dispatcher",
  "harness_worker",
  "harness_sink",
  "harness_reader",
  "harness_redriver",
] as const;

// r SELECT, a INSERT, w UPDATE, d DELETE, D TRUNCATE (table-level; column grants below).
const TABLES: Record<string, Record<(typeof GROUPS)[number], string>> = {
  "state.tasks": {
    harness_dispatcher: "rw",
    harness_worker: "",
    harness_sink: "",
    harness_reader: "r",
    harness_redriver: "",
  },
  "state.task_attempts": {
    harness_dispatcher: "raw",
    harness_worker: "",
    harness_sink: "",
    harness_reader: "r",
    harness_redriver: "",
  },
  "state.outbox": {
    harness_dispatcher: "raw",
    harness_worker: "",
    harness_sink: "",
    harness_reader: "r",
    harness_redriver: "",
  },
  "state.signing_keys": {
    harness_dispatcher: "ra",
    harness_worker: "",
    harness_sink: "",
    harness_reader: "",
    harness_redriver: "",
  },
  "state.queue_messages": {
    harness_dispatcher: "",
    harness_worker: "",
    harness_sink: "",
    harness_reader: "r",
    harness_redriver: "",
  },
  "data.alert_events": {
    harness_dispatcher: "",
    harness_worker: "",
    harness_sink: "ra",
    harness_reader: "r",
    harness_redriver: "",
  },
  "data.sink_batches": {
    harness_dispatcher: "",
    harness_worker: "",
    harness_sink: "ra",
    harness_reader: "r",
    harness_redriver: "",
  },
};

const CONSUMER = ["harness_worker", "harness_sink"];
const FUNCTIONS: Record<string, readonly string[]> = {
  "state.queue_receive": CONSUMER,
  "state.queue_ack": CONSUMER,
  "state.queue_extend": CONSUMER,
  "state.queue_record_error": CONSUMER,
  "state.queue_dead_letter": CONSUMER,
  "state.queue_depth": CONSUMER,
  "state.queue_publish": ["harness_dispatcher"],
  "state.queue_redrive": ["harness_redriver"],
  "state.queue_consumer_check": [],
};

async function tablePrivileges(): Promise<typeof TABLES> {
  const out: Record<string, Record<string, string>> = {};
  for (const table of Object.keys(TABLES)) {
    const row: Record<string, string> = {};
    for (const group of GROUPS) {
      const [r] = await db().sql`
        SELECT concat_ws('',
          CASE WHEN has_table_privilege(${group}, ${table}, 'SELECT') THEN 'r' END,
          CASE WHEN has_table_privilege(${group}, ${table}, 'INSERT') THEN 'a' END,
          CASE WHEN has_table_privilege(${group}, ${table}, 'UPDATE') THEN 'w' END,
          CASE WHEN has_table_privilege(${group}, ${table}, 'DELETE') THEN 'd' END,
          CASE WHEN has_table_privilege(${group}, ${table}, 'TRUNCATE') THEN 'D' END) AS p`;
      row[group] = String(r?.p ?? "?");
    }
    out[table] = row;
  }
  return out;
}

async function executors(fn: string): Promise<string[]> {
  const rows = await db().sql`
    SELECT g AS group FROM unnest(${[...GROUPS]}::text[]) AS g
    WHERE has_function_privilege(g, (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                                      WHERE n.nspname || '.' || p.proname = ${fn}), 'EXECUTE')
    ORDER BY array_position(${[...GROUPS]}::text[], g)`;
  return rows.map((r) => String(r.group));
}

describe("the groups' privileges, as migrate leaves them", () => {
  test("tables: exactly the security model's table", async () => {
    expect(await tablePrivileges()).toEqual(TABLES);
  });

  test("queue functions: each executable by its groups only, never by PUBLIC", async () => {
    const got: Record<string, string[]> = {};
    for (const fn of Object.keys(FUNCTIONS)) got[fn] = await executors(fn);
    expect(got).toEqual(Object.fromEntries(Object.entries(FUNCTIONS).map(([k, v]) => [k, [...v]])));
    const open = await db().sql`
      SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname IN ('state', 'data')
        AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))`;
    expect([...open]).toEqual([]);
  });

  test("every SECURITY DEFINER function pins search_path", async () => {
    const rows = await db().sql`
      SELECT p.proname::text AS name, p.proconfig AS config
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'state' AND p.prosecdef ORDER BY 1`;
    expect(rows.length).toBe(8);
    for (const r of rows)
      expect({ name: r.name, config: r.config }).toEqual({
        name: r.name,
        config: ["search_path=pg_catalog, pg_temp"],
      });
  });

  test("a privilege granted by hand is gone after the next migrate, and the rest is unchanged", async () => {
    const before = await tablePrivileges();
    await db().sql`GRANT SELECT ON state.tasks, state.signing_keys TO harness_worker`;
    await db().sql`GRANT INSERT ON state.queue_messages TO harness_sink`;
    expect((await tablePrivileges())["state.tasks"]?.harness_worker).toBe("r");
    await migrateDatabase(db().sql, "state");
    await migrateDatabase(db().sql, "data");
    expect(await tablePrivileges()).toEqual(before);
  });
});
