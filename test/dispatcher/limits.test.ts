import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, type TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";

/**
 * Bounded memory at the dispatcher's door: bodies are refused while they
 * stream (chunked ones too), and requests past MAX_CONCURRENT_REQUESTS are
 * answered 503 at once. Real process, raw sockets.
 */

const db = useFreshDatabase();
let d: TestDispatcher;
const CAP = 250;

beforeAll(async () => {
  d = await startDispatcher({
    databaseUrl: db().url,
    env: { MAX_CONCURRENT_REQUESTS: String(CAP) },
  });
});
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});

const MB = 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, "x");
/** The claim endpoint, authorised: its body is read (a bad bearer is refused before any byte of it). */
const CLAIM = "/internal/task-claim";
const head = (path: string, bearer: string | undefined) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${
    bearer === undefined ? "" : `Authorization: Bearer ${bearer}\r\n`
  }Transfer-Encoding: chunked\r\n\r\n`;

const errorCode = (err: unknown): string =>
  typeof err === "object" && err !== null && "code" in err ? String(err.code) : String(err);

/** VmHWM (peak resident set) of a process, in MiB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

interface Raw {
  socket: Socket;
  /** The status line's code, once it arrived. */
  status: Promise<number>;
  /** Sends up to `bytes` of chunked body, stopping early once the answer arrived. */
  send(bytes: number): Promise<number>;
}

function rawPost(port: number, path: string, bearer?: string): Raw {
  const socket = connect(port, "127.0.0.1");
  let answered = false;
  let text = "";
  const status = new Promise<number>((resolve, reject) => {
    socket.on("data", (data) => {
      text += data.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m !== null) {
        answered = true;
        resolve(Number(m[1]));
      }
    });
    socket.on("error", (err) => (answered ? undefined : reject(err)));
    socket.on("close", () => (answered ? undefined : reject(new Error("closed unanswered"))));
  });
  status.catch(() => {});
  const opened = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return {
    socket,
    status,
    async send(bytes) {
      await opened;
      socket.write(head(path, bearer));
      let sent = 0;
      let closed = false;
      socket.once("close", () => {
        closed = true;
      });
      while (sent < bytes && !answered && !closed && !socket.destroyed) {
        const frame = `${CHUNK.length.toString(16)}\r\n${CHUNK.toString("latin1")}\r\n`;
        let flushed: boolean;
        try {
          flushed = socket.write(frame, "latin1");
        } catch {
          break; // the server closed (EPIPE): the status says how it answered
        }
        if (!flushed) {
          await new Promise<void>((resolve) => {
            socket.once("drain", resolve);
            socket.once("close", resolve);
          });
        }
        sent += CHUNK.length;
      }
      return sent;
    },
  };
}

describe("bodies are refused while they stream", () => {
  test("a chunked body past 64 KiB gets 413 before the client has sent the rest", async () => {
    const r = rawPost(d.port, CLAIM, d.internalToken);
    // 128 KiB, and the body is never ended: only a refusal while streaming can answer it.
    await r.send(128 * 1024);
    const status = await r.status;
    r.socket.destroy();
    expect(status).toBe(413);
  });

  test("200 concurrent 15 MB chunked bodies: every one refused, the dispatcher's memory stays flat", async () => {
    const pid = d.role.proc.pid;
    // Warm up: one small refused body, so the baseline includes the code paths.
    const warm = rawPost(d.port, CLAIM, d.internalToken);
    await warm.send(128 * 1024);
    expect(await warm.status).toBe(413);
    warm.socket.destroy();
    const before = peakRssMb(pid);
    // Authorised, so every body is read; a tenth unauthorised for good measure (401 unread).
    const clients = Array.from({ length: 200 }, (_, i) =>
      rawPost(d.port, CLAIM, i % 10 === 0 ? undefined : d.internalToken),
    );
    const sent = await Promise.all(clients.map((c) => c.send(15 * MB)));
    // An authorised body is refused at its 64 KiB: 413, then the connection closes, so a
    // client still sending may see the reset first. An unauthorised one is 401, unread.
    const outcomes = await Promise.all(
      clients.map((c) => c.status.then(String, (err: unknown) => errorCode(err))),
    );
    for (const c of clients) c.socket.destroy();
    const after = peakRssMb(pid);
    const reset = (o: string) => o === "EPIPE" || o === "ECONNRESET";
    for (const [i, o] of outcomes.entries()) {
      const want = i % 10 === 0 ? "401" : "413";
      expect({ i, refused: o === want || reset(o) }).toEqual({ i, refused: true });
    }
    // Every authorised client was stopped long before its 15 MB were sent…
    const authorised = sent.filter((_, i) => i % 10 !== 0);
    expect(Math.max(...authorised)).toBeLessThan(15 * MB);
    // …and the peak grew by far less than one body per client (200 × 64 KiB alone is 12.5 MiB).
    expect(after - before).toBeLessThan(64);
    // Still serving.
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
  }, 120_000);
});

describe("MAX_CONCURRENT_REQUESTS", () => {
  test("past the cap a request is answered 503 at once; below it again, requests are served", async () => {
    // CAP requests in flight, each a chunked body that never ends.
    const held = Array.from({ length: CAP }, () => rawPost(d.port, CLAIM, d.internalToken));
    await Promise.all(held.map((h) => h.send(1024)));
    try {
      const over = await waitFor(
        async () => {
          const res = await fetch(`${d.url}/healthz`);
          return res.status === 503 ? res : undefined;
        },
        { what: "a 503 past the cap", timeoutMs: 20_000 },
      );
      expect(await over.json()).toMatchObject({ error: "overloaded" });
      expect(over.headers.get("retry-after")).toBe("1");
    } finally {
      for (const h of held) h.socket.destroy();
    }
    await waitFor(async () => (await fetch(`${d.url}/healthz`)).status === 200, {
      what: "served again once the held requests are gone",
    });
  }, 60_000);
});
