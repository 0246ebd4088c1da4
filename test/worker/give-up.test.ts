import { describe, expect, test } from "bun:test";
import {
  isDataException,
  isMissingMigration,
  isTransientDbError,
  MISSING_SCHEMA,
} from "../../src/db/errors";
import { describeError } from "../../src/describe-error";
import { GiveUp } from "../../src/give-up";
import { createLogger, type Fields, type Logger } from "../../src/log";

/** The `--until-idle` give-up rule, with the clock passed in (no sleeping). */

const db = { name: "the state database", where: "127.0.0.1:5432/x" };
const dispatcher = { name: "the dispatcher", where: "http://127.0.0.1:1 (DISPATCHER_URL)" };
const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
  code: "ECONNREFUSED",
});
const missing = new Error("receiving from task_wakeup", {
  cause: Object.assign(new Error('relation "state.queue_messages" does not exist'), {
    code: "42P01",
  }),
});

function recording(): Logger & { lines: Array<{ level: string; msg: string; fields: Fields }> } {
  const lines: Array<{ level: string; msg: string; fields: Fields }> = [];
  const at =
    (level: string) =>
    (msg: string, fields: Fields = {}) => {
      lines.push({ level, msg, fields });
    };
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => createLogger("unused"),
  };
}

describe("GiveUp", () => {
  test("gives up once one dependency stayed down for the limit, with one line naming it", () => {
    const g = new GiveUp(2_000);
    g.down(db, refused, undefined, 1_000);
    g.down(db, refused, undefined, 2_999);
    expect(g.signal.aborted).toBe(false);
    g.down(db, refused, undefined, 3_000);
    expect(g.signal.aborted).toBe(true);
    const line = describeError(g.reason);
    expect(line).toBe(
      "the state database at 127.0.0.1:5432/x stayed unavailable for 2 s (--give-up-ms 2000): connect ECONNREFUSED 127.0.0.1:5432",
    );
    expect(line).not.toContain("\n");
  });

  test("an answer in between starts the outage over; dependencies are counted apart", () => {
    const g = new GiveUp(2_000);
    g.down(dispatcher, new Error("x"), undefined, 0);
    g.down(db, refused, undefined, 1_500);
    expect(g.up(dispatcher)).toEqual({ failures: 1, since: 0 });
    expect(g.up(dispatcher)).toBeUndefined();
    g.down(dispatcher, new Error("x"), undefined, 2_500);
    expect(g.signal.aborted).toBe(false);
    g.down(db, refused, undefined, 3_500);
    expect(describeError(g.reason)).toStartWith("the state database at");
  });

  test("a missing schema gives up at once and says to migrate", () => {
    const g = new GiveUp(60_000);
    g.down(db, missing, undefined, 0);
    expect(g.signal.aborted).toBe(true);
    expect(describeError(g.reason)).toStartWith(`${MISSING_SCHEMA} (the state database at`);
  });

  test("without a limit (a long-running role) it never gives up, and logs sparingly", () => {
    const g = new GiveUp(undefined);
    const log = recording();
    const l = { log, msg: "queue unavailable", back: "queue back" };
    for (let i = 0; i < 25; i++) g.down(db, i === 0 ? missing : refused, l, i * 1_000_000);
    g.stop(new Error("nothing"));
    expect(g.signal.aborted).toBe(false);
    const loud = log.lines.filter((x) => x.level === "error");
    expect(loud.map((x) => [x.msg, x.fields.failures])).toEqual([
      [MISSING_SCHEMA, 1],
      ["queue unavailable", 10],
      ["queue unavailable", 20],
    ]);
    expect(log.lines.filter((x) => x.level === "debug")).toHaveLength(22);
    g.up(db, l);
    expect(log.lines.at(-1)).toMatchObject({
      level: "info",
      msg: "queue back",
      fields: { failures: 25 },
    });
  });

  test("stop gives up for the role's own reason, once", () => {
    const g = new GiveUp(1_000);
    g.stop(new Error("first"));
    g.stop(new Error("second"));
    expect(g.reason?.message).toBe("first");
  });
});

describe("SQLSTATE checks follow the cause chain (queue and SQL errors wrap their cause)", () => {
  const wrapped = (code: string) =>
    new Error("outer", {
      cause: new Error("middle", { cause: Object.assign(new Error("pg"), { code }) }),
    });

  test("a missing table, schema or type, however deep, is a missing migration; nothing else is", () => {
    for (const code of ["42P01", "3F000", "42704"])
      expect(isMissingMigration(wrapped(code))).toBe(true);
    expect(isMissingMigration(wrapped("42601"))).toBe(false);
    expect(isMissingMigration(new Error("relation does not exist"))).toBe(false);
  });

  test("transient and data-exception codes are found the same way", () => {
    expect(isTransientDbError(wrapped("57P01"))).toBe(true);
    expect(isTransientDbError(wrapped("ECONNREFUSED"))).toBe(true);
    expect(isTransientDbError(wrapped("42P01"))).toBe(false);
    expect(isDataException(wrapped("22P05"))).toBe(true);
    expect(isDataException(wrapped("54000"))).toBe(true);
    expect(isDataException(wrapped("23505"))).toBe(false);
  });
});
