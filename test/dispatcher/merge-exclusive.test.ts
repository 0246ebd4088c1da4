import { expect, test } from "bun:test";
import { mergedCalls } from "../../src/dispatcher/merge";

/**
 * src/dispatcher/merge.ts with two statements in flight: calls on other
 * tasks run beside a statement, but a call on a task a running statement
 * holds waits for it to end, as a repeat within one statement does.
 */

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test("two statements in flight never hold one task at once; other tasks run beside", async () => {
  const events: string[] = [];
  const gates = [deferred(), deferred()];
  let started = 0;
  const statement = async (tasks: string[]): Promise<string[]> => {
    const gate = gates[started++];
    events.push(`start ${tasks.join(",")}`);
    await gate?.promise;
    events.push(`end ${tasks.join(",")}`);
    return tasks.map((t) => `done ${t}`);
  };
  const call = mergedCalls<string, string>({
    taskOf: (t) => t,
    many: statement,
    one: async (t) => (await statement([t]))[0] ?? "",
    maxInFlight: 2,
    maxMerged: 64,
  });
  const first = call("a");
  const beside = call("B");
  const repeat = call("A");
  // The call on another task ran beside the first statement, then the repeat waited.
  expect(events).toEqual(["start a", "start B"]);
  gates[1]?.resolve();
  expect(await beside).toBe("done B");
  expect(events).toEqual(["start a", "start B", "end B"]);
  gates[0]?.resolve();
  expect(await Promise.all([first, repeat])).toEqual(["done a", "done A"]);
  expect(events).toEqual(["start a", "start B", "end B", "end a", "start A", "end A"]);
});
