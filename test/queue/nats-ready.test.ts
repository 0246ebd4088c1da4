import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  freePort,
  jetStreamReady,
  type NatsServerProcess,
  startNatsServer,
} from "../../src/platform/nats-server";

/**
 * jetStreamReady on a cluster (src/platform/nats-server.ts): two nodes of
 * three elect a meta leader and answer `$JS.API.INFO`, but cannot place a
 * stream of three replicas ("no suitable peers for placement"), which is
 * what verify --nats-cluster creates next. Ready for 3 means the third is in.
 */
const dir = mkdtempSync(join(tmpdir(), "harness-nats-ready-"));
const started: NatsServerProcess[] = [];
afterAll(async () => {
  await Promise.all(started.map((n) => n.kill()));
  rmSync(dir, { recursive: true, force: true });
});

describe("jetStreamReady on a three-node cluster", () => {
  test("two nodes up: ready for one replica, not for three; the third node makes it ready", async () => {
    const routes = [await freePort(), await freePort(), await freePort()];
    const routeList = routes.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
    const node = async (i: number) => {
      const n = await startNatsServer({
        name: `ready-n${i + 1}`,
        dir: join(dir, `n${i + 1}`),
        config: `cluster {\n  name: ready\n  listen: 127.0.0.1:${routes[i]}\n  routes: [${routeList}]\n}\n`,
      });
      started.push(n);
      return n;
    };
    const two = [await node(0), await node(1)];
    const url = two.map((n) => n.url).join(",");
    await jetStreamReady(url, 1);
    await expect(jetStreamReady(url, 3, 3_000)).rejects.toThrow(/not ready in 3000 ms/);
    const third = await node(2);
    await jetStreamReady([url, third.url].join(","), 3);
  });
});
