import type { Socket, TCPSocketListener } from "bun";

/**
 * A TCP proxy for one link (a role to one upstream host:port) that can be
 * told to misbehave, for `harness verify`'s network faults:
 *
 * - latency: every chunk is held `ms` before it is passed on;
 * - black-hole: connections are accepted and bytes taken, but nothing is
 *   passed on (no upstream connection is even opened) until the hole ends,
 *   as a partition does: TCP on either side keeps the bytes and delivers them
 *   once the path heals, unless a peer gave up first;
 * - reset: every open connection is cut with a TCP RST on both sides
 *   (`terminate()`: SO_LINGER 0, then close — the peer's next read fails with
 *   ECONNRESET), and for `ms` afterwards each new connection is reset at once.
 *
 * Bytes keep their order in each direction; a close is passed on in order too
 * (a reset as a reset). A tap, when given, sees every byte as it is delivered.
 */

export interface Upstream {
  host: string;
  port: number;
}

export type Direction = "request" | "response";

/** Sees a link's traffic: per connection, each direction's bytes in order as they are delivered. */
export interface LinkTap {
  data(conn: number, direction: Direction, bytes: Uint8Array): void;
  closed(conn: number): void;
}

type Item = { at: number; bytes: Uint8Array } | { at: number; close: "end" | "reset" };

class Pipe {
  readonly items: Item[] = [];
  /** The part of the head chunk the target did not take yet (backpressure). */
  unwritten: Uint8Array | undefined;
  constructor(readonly direction: Direction) {}
}

class Conn {
  upstream: Socket<Conn> | undefined;
  connecting = false;
  done = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly toUpstream = new Pipe("request");
  readonly toClient = new Pipe("response");
  constructor(
    readonly id: number,
    readonly client: Socket<Conn>,
  ) {}
}

export class FaultProxy {
  private readonly conns = new Set<Conn>();
  private readonly listener: TCPSocketListener<Conn>;
  private latencyMs = 0;
  private holdUntil = 0;
  private refuseUntil = 0;
  private nextId = 1;
  /** Connections reset so far, by `reset()` or while refusing. */
  resets = 0;

  constructor(
    readonly name: string,
    private readonly upstream: Upstream,
    private readonly tap?: LinkTap,
  ) {
    const self = this;
    this.listener = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(client) {
          self.accept(client);
        },
        data(client, bytes) {
          self.take(client.data, client.data.toUpstream, bytes);
        },
        drain(client) {
          self.pump(client.data);
        },
        close(client, err) {
          self.take(client.data, client.data.toUpstream, err === undefined ? "end" : "reset");
        },
        error() {
          // close follows, with the error
        },
      },
    });
  }

  get port(): number {
    return this.listener.port;
  }

  get openConnections(): number {
    return this.conns.size;
  }

  /** Holds every chunk that arrives from now on `ms` before passing it on (0 ends it). */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /** Passes nothing on, and opens no upstream connection, for `ms`. */
  blackhole(ms: number): void {
    this.holdUntil = Math.max(this.holdUntil, Date.now() + ms);
  }

  /** Resets every open connection now, and every new one for `ms`; returns how many were open. */
  reset(ms = 0): number {
    this.refuseUntil = Math.max(this.refuseUntil, Date.now() + ms);
    const open = [...this.conns];
    for (const c of open) this.cut(c);
    this.resets += open.length;
    return open.length;
  }

  /** Closes the listener and resets whatever is still open. */
  stop(): void {
    for (const c of [...this.conns]) this.cut(c);
    this.listener.stop(true);
  }

  private accept(client: Socket<Conn>): void {
    const conn = new Conn(this.nextId++, client);
    client.data = conn;
    this.conns.add(conn);
    if (Date.now() < this.refuseUntil) {
      this.resets++;
      this.cut(conn);
      return;
    }
    this.pump(conn);
  }

  private take(conn: Conn, pipe: Pipe, what: Uint8Array | "end" | "reset"): void {
    if (conn.done) return;
    const at = Date.now() + this.latencyMs;
    // Copied: the socket may reuse its read buffer once the handler returns.
    pipe.items.push(
      typeof what === "string" ? { at, close: what } : { at, bytes: new Uint8Array(what) },
    );
    this.pump(conn);
  }

  private connectUpstream(conn: Conn): void {
    conn.connecting = true;
    const self = this;
    Bun.connect<Conn>({
      hostname: this.upstream.host,
      port: this.upstream.port,
      data: conn,
      socket: {
        open(up) {
          if (conn.done) up.terminate();
          else {
            conn.upstream = up;
            self.pump(conn);
          }
        },
        data(up, bytes) {
          self.take(up.data, up.data.toClient, bytes);
        },
        drain(up) {
          self.pump(up.data);
        },
        close(up, err) {
          self.take(up.data, up.data.toClient, err === undefined ? "end" : "reset");
        },
        error() {},
        connectError() {
          // The upstream refused (e.g. PostgreSQL is down): the client sees its connection reset.
          self.cut(conn);
        },
      },
    }).catch(() => this.cut(conn));
  }

  /** Moves whatever is due in both directions; sets a timer for what is not due yet. */
  private pump(conn: Conn): void {
    if (conn.done) return;
    clearTimeout(conn.timer);
    const now = Date.now();
    if (now < this.holdUntil) {
      this.wakeAt(conn, this.holdUntil);
      return;
    }
    if (conn.upstream === undefined) {
      if (!conn.connecting) this.connectUpstream(conn);
    } else if (!this.flush(conn, conn.toUpstream, conn.upstream, now)) return;
    if (!conn.done) this.flush(conn, conn.toClient, conn.client, now);
  }

  /** Writes the pipe's due items to `target`; false once the connection ended. */
  private flush(conn: Conn, pipe: Pipe, target: Socket<Conn>, now: number): boolean {
    for (;;) {
      if (pipe.unwritten !== undefined) {
        const n = target.write(pipe.unwritten);
        if (n < 0) return true; // closing: its close event follows
        pipe.unwritten = n < pipe.unwritten.byteLength ? pipe.unwritten.subarray(n) : undefined;
        if (pipe.unwritten !== undefined) return true; // wait for drain
      }
      const head = pipe.items[0];
      if (head === undefined) return true;
      if (head.at > now) {
        this.wakeAt(conn, head.at);
        return true;
      }
      pipe.items.shift();
      if ("close" in head) {
        this.finish(conn, head.close);
        return false;
      }
      this.tap?.data(conn.id, pipe.direction, head.bytes);
      pipe.unwritten = head.bytes;
    }
  }

  private wakeAt(conn: Conn, at: number): void {
    clearTimeout(conn.timer);
    conn.timer = setTimeout(() => this.pump(conn), Math.max(0, at - Date.now()));
  }

  /** A peer closed: close the other side the same way, and forget the connection. */
  private finish(conn: Conn, how: "end" | "reset"): void {
    if (how === "reset") {
      this.cut(conn);
      return;
    }
    conn.done = true;
    clearTimeout(conn.timer);
    this.conns.delete(conn);
    conn.client.end();
    conn.upstream?.end();
    this.tap?.closed(conn.id);
  }

  /** Sends an RST both ways. */
  private cut(conn: Conn): void {
    conn.done = true;
    clearTimeout(conn.timer);
    this.conns.delete(conn);
    conn.client.terminate();
    conn.upstream?.terminate();
    this.tap?.closed(conn.id);
  }
}
