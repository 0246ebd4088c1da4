import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { createLogger } from "../../log";

/**
 * Opens the connection a NATS backend lives on, from a QUEUE_URL
 * (`nats://[user:pass@]host:port[,host:port…]`). It reconnects by itself,
 * forever, when a server restarts or the link drops: publishes made
 * meanwhile are held and sent once back, requests fail after their timeout.
 */

const log = createLogger("queue");

export interface NatsTarget {
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** Splits a QUEUE_URL into servers and credentials (never logged). */
export function parseNatsUrl(url: string): NatsTarget {
  const target: NatsTarget = { servers: [] };
  for (const part of url.split(",")) {
    const u = new URL(part.includes("://") ? part : `nats://${part}`);
    if (u.protocol !== "nats:") throw new Error(`QUEUE_URL entry ${u.host} must use nats://`);
    if (u.username !== "" && u.password !== "") {
      target.user = decodeURIComponent(u.username);
      target.pass = decodeURIComponent(u.password);
    } else if (u.username !== "") {
      target.token = decodeURIComponent(u.username);
    }
    target.servers.push(`${u.hostname}:${u.port === "" ? "4222" : u.port}`);
  }
  if (target.servers.length === 0) throw new Error("QUEUE_URL names no server");
  return target;
}

/** The servers of a QUEUE_URL, credentials left out: what messages may show. */
export function describeNatsUrl(url: string): string {
  try {
    return parseNatsUrl(url).servers.join(",");
  } catch {
    return "(unparsable QUEUE_URL)";
  }
}

/**
 * The reply-subject prefix of this connection. Each broker user gets its own
 * (`_INBOX_<user>`), so the permission file can let it read its own replies
 * and no one else's.
 */
export function inboxPrefixFor(t: NatsTarget): string {
  return t.user === undefined ? "_INBOX" : `_INBOX_${t.user}`;
}

export async function openNats(url: string, name: string): Promise<NatsConnection> {
  const t = parseNatsUrl(url);
  const options: NodeConnectionOptions = {
    servers: t.servers,
    name: `harness-${name}`,
    inboxPrefix: inboxPrefixFor(t),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 5_000,
    maxPingOut: 2,
    timeout: 5_000,
    ...(t.user === undefined ? {} : { user: t.user, pass: t.pass }),
    ...(t.token === undefined ? {} : { token: t.token }),
  };
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (cause) {
    throw new Error(`cannot reach NATS at ${t.servers.join(",")}`, { cause });
  }
  void watch(nc, name);
  return nc;
}

async function watch(nc: NatsConnection, name: string): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === "disconnect") log.warn("queue connection lost, reconnecting", { name });
    else if (s.type === "reconnect") log.info("queue connection back", { name, server: s.server });
    else if (s.type === "error") log.warn("queue connection error", { name, err: s.error });
  }
}
