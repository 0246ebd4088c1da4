import { afterAll, describe, expect, test } from "bun:test";
import { EXCESS_LOG } from "../../src/users/excess";
import { WORKER_LOG } from "../../src/worker/logs";
import { useFreshDatabase } from "../support/db";
import { TEST_INTERNAL_TOKEN, TEST_OBJECT_STORE_URL } from "../support/dispatcher";
import { freePort } from "../support/embedded";
import { runHarness, spawnHarness } from "../support/processes";
import { removeUsers } from "../support/users";
import { waitFor } from "../support/wait";

/**
 * A role that starts with more privilege than it needs says so in ONE
 * warning line (what, and how to fix it), and runs on.
 */

const db = useFreshDatabase();
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 6)}`;
const made: string[] = [];
const owner = () => ({ DATABASE_URL: db().url });

afterAll(() => removeUsers(made));

async function userUrl(role: string): Promise<string> {
  const name = `${role}_${suffix}`;
  made.push(name);
  const r = await runHarness(["user", "add", "--role", role, name], owner());
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split("\n")[0]?.replace("STATE_DATABASE_URL=", "") ?? "";
}

const common = {
  INTERNAL_AUTH_TOKEN: TEST_INTERNAL_TOKEN,
  OBJECT_STORE_URL: TEST_OBJECT_STORE_URL,
};

/** The excess-privilege warnings a worker logs as it starts (it is stopped once started). */
async function workerWarnings(env: Record<string, string>) {
  const worker = spawnHarness("worker", ["worker"], { ...common, ...env });
  try {
    await worker.waitForLog((l) => l.msg === WORKER_LOG.started, "the worker to start");
  } finally {
    expect(await worker.stop()).toBe(0);
  }
  return worker.logs.filter((l) => l.msg === EXCESS_LOG.warning);
}

describe("a role with more privilege than it needs", () => {
  test("a worker on the owner's URL, with a DATA URL and a signing key: one warning naming all three", async () => {
    const warnings = await workerWarnings({
      STATE_DATABASE_URL: db().url,
      DATA_DATABASE_URL: db().url,
      CAPABILITY_SIGNING_KEY: "{}",
    });
    expect(warnings).toHaveLength(1);
    const [warning] = warnings;
    expect(warning).toMatchObject({
      level: "warn",
      role: "worker",
      excess: [
        "its environment holds DATA_DATABASE_URL, CAPABILITY_SIGNING_KEY",
        "connected as the superuser postgres",
      ],
    });
    expect(String(warning?.fix)).toContain("harness user add --role worker");
  });

  test("a worker user that is also in harness_dispatcher, or was granted a table: one warning", async () => {
    const url = await userUrl("worker");
    const name = new URL(url).username;
    expect(await workerWarnings({ STATE_DATABASE_URL: url })).toEqual([]);
    await db().sql.unsafe(`GRANT harness_dispatcher TO "${name}"`);
    const warnings = await workerWarnings({ STATE_DATABASE_URL: url });
    expect(warnings.map((w) => w.excess)).toEqual([
      [
        `${name} is a member of harness_dispatcher`,
        `${name} may read state.outbox, state.signing_keys, state.task_attempts, state.tasks`,
      ],
    ]);
  });

  test("a sink on the owner's URLs, and a dispatcher given the DATA URL: each warns once", async () => {
    const sink = await runHarness(["sink", "--until-idle", "--idle-ms", "0"], {
      ...common,
      DATABASE_URL: db().url,
    });
    expect(sink.code).toBe(0);
    expect(sink.stderr.split(EXCESS_LOG.warning)).toHaveLength(2);
    const port = await freePort();
    const dispatcher = spawnHarness("dispatcher", ["dispatcher"], {
      ...common,
      STATE_DATABASE_URL: await userUrl("dispatcher"),
      DATA_DATABASE_URL: db().url,
      PORT: String(port),
    });
    try {
      const line = await dispatcher.waitForLog((l) => l.msg === EXCESS_LOG.warning, "the warning");
      expect(line.excess).toEqual(["its environment holds DATA_DATABASE_URL"]);
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok,
        { what: "the dispatcher to run on" },
      );
    } finally {
      expect(await dispatcher.stop()).toBe(0);
    }
    expect(dispatcher.logs.filter((l) => l.msg === EXCESS_LOG.warning)).toHaveLength(1);
  });
});
