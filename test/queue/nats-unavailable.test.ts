import { describe, expect, test } from "bun:test";
import { JetStreamApiError } from "@nats-io/jetstream";
import { whileUnavailable } from "../../src/queue/nats/store";

/**
 * A JetStream API request answered 503 while a cluster elects its leaders
 * (CI saw "JetStream system temporarily unavailable" on a MSG.GET right after
 * a stream leader was killed) is sent again; any other answer is the
 * caller's at once.
 */

const unavailable = () =>
  new JetStreamApiError({
    code: 503,
    err_code: 10008,
    description: "JetStream system temporarily unavailable",
  });

describe("a JetStream API request during a failover", () => {
  test("answered 503, it is sent again until it is answered", async () => {
    let tries = 0;
    const answer = await whileUnavailable(async () => {
      tries++;
      if (tries < 3) throw unavailable();
      return "answered";
    });
    expect({ answer, tries }).toEqual({ answer: "answered", tries: 3 });
  });

  test("any other refusal goes to the caller at once", async () => {
    let tries = 0;
    const missing = new JetStreamApiError({
      code: 404,
      err_code: 10037,
      description: "no message found",
    });
    const refused = whileUnavailable(async () => {
      tries++;
      throw missing;
    });
    await expect(refused).rejects.toBe(missing);
    expect(tries).toBe(1);
  });

  test("still 503 when its time is up, the last answer goes to the caller", async () => {
    let tries = 0;
    const refused = whileUnavailable(async () => {
      tries++;
      throw unavailable();
    }, 250);
    await expect(refused).rejects.toBeInstanceOf(JetStreamApiError);
    expect(tries).toBeGreaterThan(1);
    expect(tries).toBeLessThan(5);
  });
});
