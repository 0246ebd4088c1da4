import { headers, type MsgHdrs } from "@nats-io/transport-node";

/**
 * What a stored message carries besides its payload: the headers the NATS
 * backend writes, and the delivery facts the server puts in a pull reply's
 * ack subject. A message keeps its identity through every copy the backend
 * makes of it (a delayed message moved to ready, a dead letter, a redriven
 * one): the first copy's stream sequence is its id, its first publish time
 * its creation time.
 */

export const H = {
  /** The message's id, on every copy but the first (whose id is its own sequence). */
  id: "Harness-Id",
  /** Epoch ms of the first publish. */
  createdAt: "Harness-Created-At",
  /** Epoch ms before which a delayed message stays hidden. */
  availableAt: "Harness-Available-At",
  /** URI-encoded: header values may hold no line breaks. */
  lastError: "Harness-Last-Error",
  /** On a dead letter: how many times it had been received. */
  receiveCount: "Harness-Receive-Count",
} as const;

export interface Envelope {
  /** Set when this copy is not the message's first. */
  id?: string;
  createdAt?: number;
  availableAt?: number;
  lastError?: string | null;
  receiveCount?: number;
}

export function envelopeHeaders(e: Envelope): MsgHdrs {
  const h = headers();
  if (e.id !== undefined) h.set(H.id, e.id);
  if (e.createdAt !== undefined) h.set(H.createdAt, String(e.createdAt));
  if (e.availableAt !== undefined) h.set(H.availableAt, String(e.availableAt));
  if (e.lastError !== undefined && e.lastError !== null) {
    h.set(H.lastError, encodeURIComponent(e.lastError));
  }
  if (e.receiveCount !== undefined) h.set(H.receiveCount, String(e.receiveCount));
  return h;
}

function int(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

export function readEnvelope(h: MsgHdrs | undefined): Envelope {
  if (h === undefined) return {};
  const get = (k: string) => (h.has(k) ? h.get(k) : undefined);
  const id = get(H.id);
  const lastError = get(H.lastError);
  let decoded: string | undefined;
  try {
    decoded = lastError === undefined ? undefined : decodeURIComponent(lastError);
  } catch {
    decoded = lastError;
  }
  return {
    ...(id !== undefined && /^\d+$/.test(id) ? { id } : {}),
    createdAt: int(get(H.createdAt)),
    availableAt: int(get(H.availableAt)),
    ...(decoded === undefined ? {} : { lastError: decoded }),
    receiveCount: int(get(H.receiveCount)),
  };
}

export interface DeliveryInfo {
  /** Deliveries of this stream message to this consumer, this one included. */
  deliveryCount: number;
  streamSeq: number;
  /** When the server stored it, epoch ms. */
  storedAt: number;
}

/**
 * Reads the ack subject of a pulled message:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or
 * the newer form with a domain and account hash after `ACK` (and a token at the end).
 */
export function parseAckSubject(reply: string | undefined): DeliveryInfo | undefined {
  const t = reply?.split(".") ?? [];
  if (t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const at = t.length === 9 ? 4 : t.length === 11 || t.length === 12 ? 6 : -1;
  if (at < 0) return undefined;
  const [dc, sseq, , ts] = t.slice(at, at + 4).map((x) => (/^\d+$/.test(x) ? x : undefined));
  if (dc === undefined || sseq === undefined || ts === undefined) return undefined;
  return {
    deliveryCount: Number(dc),
    streamSeq: Number(sseq),
    storedAt: Number(BigInt(ts) / 1_000_000n),
  };
}
