import type { AlertLine } from "../contracts/alert";
import { Severity } from "../contracts/common";

/**
 * The validated rows of one batch, packed: a batch is validated whole before
 * any write, so its rows wait in memory, and as JavaScript strings and arrays
 * they took about twice the batch's size, and more once serialized for the
 * insert. Here each row is one record of UTF-8 bytes in shared slabs, about
 * the size of its line. The rows come back out a chunk of plain columns at a
 * time, ready for one set-based insert each: in line order, or in
 * dedupe-key order.
 *
 * Record: severity (1 byte), the length of the rest (4 bytes), then
 * dedupe_key, source, title, occurred_at and the attributes' JSON joined by
 * U+0000, as UTF-8. No valid value holds U+0000 (src/sink/line.ts refuses
 * it), so the join is unambiguous and a key ends at its first 0x00 byte.
 */

/** One chunk of rows as columns, as the insert sends them (src/sink/sql.ts alertColumnsFrom). */
export interface AlertColumns {
  dedupeKeys: string[];
  sources: string[];
  severities: string[];
  titles: string[];
  /** RFC 3339 text as written; the database parses it. */
  occurredAts: string[];
  /** `JSON.stringify` of each line's attributes (`{}` when absent). */
  attributes: string[];
}

const SEVERITIES = Severity.options;
/** Slabs start small (most batches are) and double up to SLAB_BYTES. */
const FIRST_SLAB_BYTES = 64 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
/** A record this large gets a slab of its own, so a slab's unused tail stays small. */
const OWN_SLAB_BYTES = 256 * 1024;
const HEAD = 5;
const SEPARATOR = "\u0000";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const u32 = (b: Uint8Array, at: number): number =>
  ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>>
  0;

function setU32(b: Uint8Array, at: number, n: number): void {
  b[at] = n & 0xff;
  b[at + 1] = (n >>> 8) & 0xff;
  b[at + 2] = (n >>> 16) & 0xff;
  b[at + 3] = (n >>> 24) & 0xff;
}

function grown(a: Uint32Array<ArrayBuffer>, need: number): Uint32Array<ArrayBuffer> {
  if (need <= a.length) return a;
  const b = new Uint32Array(Math.max(need, a.length * 2));
  b.set(a);
  return b;
}

export class AlertRows {
  private readonly slabs: Uint8Array[] = [];
  /** Bytes used in the last slab. */
  private used = 0;
  private slabOf = new Uint32Array(256);
  private offsetOf = new Uint32Array(256);
  private rows = 0;
  private recordBytes = 0;

  get count(): number {
    return this.rows;
  }

  /** The packed size of every row: about what their statements' parameters take. */
  get bytes(): number {
    return this.recordBytes;
  }

  append(alert: AlertLine): void {
    const attributes = alert.attributes === undefined ? "{}" : JSON.stringify(alert.attributes);
    const text = [alert.dedupe_key, alert.source, alert.title, alert.occurred_at, attributes].join(
      SEPARATOR,
    );
    // Room for the worst case (3 bytes per UTF-16 unit); only a large record is measured exactly.
    const worst = HEAD + text.length * 3;
    const slab = this.room(worst > OWN_SLAB_BYTES ? HEAD + Buffer.byteLength(text) : worst);
    const start = this.used;
    const { written } = encoder.encodeInto(text, slab.subarray(start + HEAD));
    slab[start] = SEVERITIES.indexOf(alert.severity);
    setU32(slab, start + 1, written);
    this.used = start + HEAD + written;
    this.recordBytes += HEAD + written;
    this.slabOf = grown(this.slabOf, this.rows + 1);
    this.offsetOf = grown(this.offsetOf, this.rows + 1);
    this.slabOf[this.rows] = this.slabs.length - 1;
    this.offsetOf[this.rows] = start;
    this.rows++;
  }

  /** The slab to write up to `size` bytes into, at `this.used`. */
  private room(size: number): Uint8Array {
    const last = this.slabs[this.slabs.length - 1];
    if (last !== undefined && last.byteLength - this.used >= size) return last;
    const next = Math.min(SLAB_BYTES, (last?.byteLength ?? FIRST_SLAB_BYTES / 2) * 2);
    const slab = new Uint8Array(Math.max(size, next));
    this.slabs.push(slab);
    this.used = 0;
    return slab;
  }

  /** Row numbers in line order. */
  lineOrder(): Uint32Array {
    const order = new Uint32Array(this.rows);
    for (let i = 0; i < this.rows; i++) order[i] = i;
    return order;
  }

  /**
   * Row numbers in dedupe-key order (UTF-8 bytes, as PostgreSQL's "C"
   * collation orders them), the earlier line first among equal keys.
   */
  keyOrder(): Uint32Array {
    return this.lineOrder().sort((a, b) => this.compareKeys(a, b) || a - b);
  }

  /** Byte by byte up to the key's end (its 0x00 separator, below every other byte). */
  private compareKeys(a: number, b: number): number {
    const sa = this.slabs[this.slabOf[a] ?? 0] ?? new Uint8Array();
    const sb = this.slabs[this.slabOf[b] ?? 0] ?? new Uint8Array();
    const oa = (this.offsetOf[a] ?? 0) + HEAD;
    const ob = (this.offsetOf[b] ?? 0) + HEAD;
    for (let i = 0; ; i++) {
      const x = sa[oa + i] ?? 0;
      const y = sb[ob + i] ?? 0;
      if (x !== y) return x - y;
      if (x === 0) return 0;
    }
  }

  /** The rows of `order` as columns, `maxRows` or about `maxBytes` of records at a time. */
  *columns(order: Uint32Array, maxRows: number, maxBytes: number): Generator<AlertColumns> {
    let c = emptyColumns();
    let bytes = 0;
    for (const row of order) {
      bytes += this.appendTo(c, row);
      if (c.dedupeKeys.length >= maxRows || bytes >= maxBytes) {
        yield c;
        c = emptyColumns();
        bytes = 0;
      }
    }
    if (c.dedupeKeys.length > 0) yield c;
  }

  /** Decodes one row into `c`; returns its record's size. */
  private appendTo(c: AlertColumns, row: number): number {
    const slab = this.slabs[this.slabOf[row] ?? 0] ?? new Uint8Array();
    const start = this.offsetOf[row] ?? 0;
    const length = u32(slab, start + 1);
    const text = decoder.decode(slab.subarray(start + HEAD, start + HEAD + length));
    const [key = "", source = "", title = "", occurredAt = "", attributes = "{}"] =
      text.split(SEPARATOR);
    c.severities.push(SEVERITIES[slab[start] ?? 0] ?? "info");
    c.dedupeKeys.push(key);
    c.sources.push(source);
    c.titles.push(title);
    c.occurredAts.push(occurredAt);
    c.attributes.push(attributes);
    return HEAD + length;
  }
}

/**
 * The validated rows of a batch small enough for one statement, as the
 * alerts themselves: their columns are taken straight from them, never
 * packed and unpacked (the round trip AlertRows makes to hold a large batch
 * in little memory). A batch of at most ONE_STATEMENT_BYTES takes a few
 * times that in memory this way.
 */
export class AlertList {
  private readonly alerts: AlertLine[] = [];
  /** The dedupe keys, in line order: all a batch of stored rows needs (src/sink/sql.ts). */
  readonly keys: string[] = [];

  get count(): number {
    return this.alerts.length;
  }

  append(alert: AlertLine): void {
    this.alerts.push(alert);
    this.keys.push(alert.dedupe_key);
  }

  /** Every row as columns, in line order: appended to `c`, new ones by default. */
  columns(c: AlertColumns = emptyColumns()): AlertColumns {
    for (const a of this.alerts) {
      c.dedupeKeys.push(a.dedupe_key);
      c.sources.push(a.source);
      c.severities.push(a.severity);
      c.titles.push(a.title);
      c.occurredAts.push(a.occurred_at);
      c.attributes.push(a.attributes === undefined ? "{}" : JSON.stringify(a.attributes));
    }
    return c;
  }
}

/** A batch of at most this many bytes is held as an AlertList and written in one statement. */
export const ONE_STATEMENT_BYTES = 1024 * 1024;

export function emptyColumns(): AlertColumns {
  return {
    dedupeKeys: [],
    sources: [],
    severities: [],
    titles: [],
    occurredAts: [],
    attributes: [],
  };
}
