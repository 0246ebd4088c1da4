import { afterAll, describe, expect, test } from "bun:test";
import { FaultNet } from "../../src/verify/net";

/** Which of a role's connections go through which link of verify's fault proxy. */

const net = new FaultNet([
  { label: "postgres", url: "postgres://u:p@db.internal:5433/state" },
  { label: "postgres-data", url: "postgres://u:p@db.internal:5433/data" },
  { label: "dispatcher-1", url: "http://127.0.0.1:18080" },
  { label: "broker", url: "nats://127.0.0.1:4222" },
]);
afterAll(() => net.stop());

const env = {
  STATE_DATABASE_URL: "postgres://u:p@db.internal:5433/state",
  DATA_DATABASE_URL: "postgres://u:p@db.internal:5433/data",
  DISPATCHER_URL: "http://127.0.0.1:18080",
  QUEUE_URL: "nats://127.0.0.1:4222",
  OBJECT_STORE_URL: "file:///tmp/x",
};

const port = (url: string | undefined) => new URL(url ?? "").port;

describe("fault network routing", () => {
  test("each role's upstreams go through links of its own; the rest of its environment is left alone", () => {
    const worker = net.route("worker-1", env);
    const sink = net.route("sink", env);
    const dispatcher = net.route("dispatcher-1", env);
    expect(net.links()).toEqual([
      "dispatcher-1→broker",
      "dispatcher-1→postgres",
      "sink→broker",
      "sink→postgres",
      "worker-1→broker",
      "worker-1→dispatcher-1",
      "worker-1→postgres",
    ]);
    // Same server for both databases: one link, the database name and credentials kept.
    expect(sink.STATE_DATABASE_URL).toBe(
      `postgres://u:p@127.0.0.1:${port(sink.STATE_DATABASE_URL)}/state`,
    );
    expect(port(sink.DATA_DATABASE_URL)).toBe(port(sink.STATE_DATABASE_URL));
    expect(port(worker.STATE_DATABASE_URL)).not.toBe(port(sink.STATE_DATABASE_URL));
    expect(worker.DISPATCHER_URL).not.toBe(env.DISPATCHER_URL);
    // A dispatcher does not use the data database or another dispatcher: those stay as they are.
    expect(dispatcher.DATA_DATABASE_URL).toBe(env.DATA_DATABASE_URL);
    expect(worker.OBJECT_STORE_URL).toBe(env.OBJECT_STORE_URL);
  });

  test("an upstream it was not told about, or a list of servers, is not rerouted", () => {
    const other = net.route("worker-2", {
      STATE_DATABASE_URL: "postgres://u:p@elsewhere:5432/state",
      QUEUE_URL: "nats://127.0.0.1:4222,127.0.0.1:4223",
    });
    expect(other).toEqual({
      STATE_DATABASE_URL: "postgres://u:p@elsewhere:5432/state",
      QUEUE_URL: "nats://127.0.0.1:4222,127.0.0.1:4223",
    });
    expect(() => net.apply("worker-2→postgres", { fault: "reset", ms: 0 })).toThrow(
      "no network link",
    );
  });
});
