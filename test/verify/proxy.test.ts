import { afterAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { join } from "node:path";
import * as v from "valibot";
import { connect } from "../../src/db/connect";
import { FaultProxy } from "../../src/verify/proxy";
import { useFreshDatabase } from "../support/db";
import { waitFor } from "../support/wait";

/**
 * verify's fault proxy, against real clients: a reset is a real TCP RST (the
 * client's read fails with ECONNRESET), latency and black holes really hold
 * bytes, and a postgres.js pool behind it comes back by itself afterwards.
 */

const db = useFreshDatabase();

/** An echo server on loopback. */
const echo = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(socket, bytes) {
      socket.write(bytes);
    },
  },
});
const proxies: FaultProxy[] = [];
afterAll(() => {
  for (const p of proxies) p.stop();
  echo.stop(true);
});

function proxyTo(port: number): FaultProxy {
  const p = new FaultProxy("test", { host: "127.0.0.1", port });
  proxies.push(p);
  return p;
}

/** A node:net client through `port`, keeping what it received and how it ended. */
async function client(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  const seen: { bytes: Buffer; firstAt?: number; error?: string; closed: boolean } = {
    bytes: Buffer.alloc(0),
    closed: false,
  };
  socket.on("data", (b: Buffer) => {
    seen.firstAt ??= performance.now();
    seen.bytes = Buffer.concat([seen.bytes, b]);
  });
  socket.on("error", (err: NodeJS.ErrnoException) => {
    seen.error = err.code;
  });
  socket.on("close", () => {
    seen.closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, seen };
}

const tcpPort = (url: string) => Number(new URL(url).port || 5432);
const through = (url: string, p: FaultProxy) => {
  const u = new URL(url);
  u.hostname = "127.0.0.1";
  u.port = String(p.port);
  return u.toString();
};

describe("fault proxy", () => {
  test("passes bytes both ways, in order and whole", async () => {
    const p = proxyTo(echo.port);
    const c = await client(p.port);
    const sent = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    c.socket.write(sent);
    await waitFor(() => c.seen.bytes.length >= sent.length, { what: "the echo" });
    expect(Buffer.compare(c.seen.bytes, sent)).toBe(0);
    c.socket.end();
  });

  test("reset: the client's read fails with ECONNRESET (a real RST), and new connections are reset until the fault ends", async () => {
    const p = proxyTo(echo.port);
    const c = await client(p.port);
    c.socket.write("ping");
    await waitFor(() => c.seen.bytes.length === 4, { what: "the echo" });
    expect(p.reset(300)).toBe(1);
    await waitFor(() => c.seen.closed, { what: "the reset to reach the client" });
    expect(c.seen.error).toBe("ECONNRESET");
    // Refused while the fault lasts: accepted, then reset at once.
    const during = await client(p.port);
    await waitFor(() => during.seen.closed, { what: "the refused connection to close" });
    expect(during.seen.error).toBe("ECONNRESET");
    expect(p.resets).toBe(2);
    // Once the fault is over, a new connection goes through.
    const after = await waitFor(
      async () => {
        const next = await client(p.port);
        next.socket.write("back");
        await waitFor(() => next.seen.closed || next.seen.bytes.length === 4, {
          what: "an answer",
        });
        return next.seen.bytes.toString() === "back" ? next : undefined;
      },
      { what: "a connection after the fault", timeoutMs: 5_000 },
    );
    after.socket.end();
  });

  test("latency holds every chunk at least that long", async () => {
    const p = proxyTo(echo.port);
    const c = await client(p.port);
    p.setLatency(150);
    const sent = performance.now();
    c.socket.write("slow");
    await waitFor(() => c.seen.bytes.length === 4, { what: "the delayed echo" });
    // Held on the way there and on the way back.
    expect(performance.now() - sent).toBeGreaterThanOrEqual(290);
    p.setLatency(0);
    c.socket.end();
  });

  test("a black hole takes bytes and answers nothing until it ends, then delivers them", async () => {
    const p = proxyTo(echo.port);
    const c = await client(p.port);
    p.blackhole(600);
    const held = performance.now();
    c.socket.write("held");
    const fresh = await client(p.port); // accepted, not connected upstream before the hole ends
    fresh.socket.write("new");
    await waitFor(
      () => c.seen.bytes.toString() === "held" && fresh.seen.bytes.toString() === "new",
      { what: "the held bytes after the hole" },
    );
    // Not a byte came back before the hole ended.
    expect((c.seen.firstAt ?? 0) - held).toBeGreaterThanOrEqual(590);
    expect((fresh.seen.firstAt ?? 0) - held).toBeGreaterThanOrEqual(590);
    c.socket.end();
    fresh.socket.end();
  });

  test("a storm of resets under load: every query settles, none waits forever, the pool keeps working", async () => {
    // patches/postgres@3.4.9.patch: queries the pool wrote to a connection between its
    // socket's error and close events used to wait forever, and the pool with them.
    const storm = Bun.spawn([process.execPath, join(import.meta.dir, "reset-storm.ts"), db().url], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, out, err] = await Promise.all([
      storm.exited,
      new Response(storm.stdout).text(),
      new Response(storm.stderr).text(),
    ]);
    expect({ code, err: code === 0 ? "" : err.slice(-2000) }).toEqual({ code: 0, err: "" });
    const Result = v.object({ ok: v.number(), failed: v.number(), resets: v.number() });
    const { ok, failed, resets } = v.parse(Result, JSON.parse(out));
    expect(ok).toBeGreaterThan(15 * 20);
    expect(failed).toBeGreaterThan(0);
    expect(resets).toBeGreaterThan(0);
  }, 60_000);

  test("a postgres.js query in flight sees ECONNRESET; the pool reconnects by itself and ends cleanly", async () => {
    const p = proxyTo(tcpPort(db().url));
    const sql = connect(through(db().url, p), { name: "test-proxy", max: 2 });
    expect([...(await sql`SELECT 1 AS one`)]).toEqual([{ one: 1 }]);
    const inFlight = sql`SELECT pg_sleep(5)`.then(
      () => "answered",
      (err: NodeJS.ErrnoException) => err.code,
    );
    await waitFor(
      async () => {
        const [row] = await db().sql`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'harness-test-proxy' AND query LIKE '%pg_sleep%' AND state = 'active'`;
        return row?.n === 1;
      },
      { what: "the query to be running" },
    );
    p.reset(200);
    expect(await inFlight).toBe("ECONNRESET");
    // Refused meanwhile, like a server that is down.
    expect(
      await sql`SELECT 1`.then(
        () => "answered",
        (err: NodeJS.ErrnoException) => err.code,
      ),
    ).toBe("ECONNRESET");
    const back = await waitFor(() => sql`SELECT 2 AS two`.catch(() => undefined), {
      what: "the pool to reconnect",
      timeoutMs: 5_000,
    });
    expect([...back]).toEqual([{ two: 2 }]);
    // patches/postgres@3.4.9.patch: end() no longer waits forever for the reset query.
    await sql.end();
  }, 20_000);
});
