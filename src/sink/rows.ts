/**
 * The validated rows of one batch, kept as the lines that brought them: a
 * line is checked against the AlertLine contract, and then its own JSON
 * text is what the insert reads (src/sink/sql.ts), never a copy
 * re-serialized from the parsed value. PostgreSQL reads the text as jsonb,
 * which resolves a repeated key as JSON.parse does (the last wins), and the
 * contract refused every text whose value PostgreSQL would read otherwise
 * (src/sink/line.ts). Unknown to the insert, `org_id` is ignored there: the
 * rows take the task's org.
 *
 * A batch larger than ONE_STATEMENT_BYTES waits in memory packed
 * (AlertRows): as JavaScript strings its lines took about twice the
 * batch's size. Each row is one record of bytes in shared slabs: its length
 * (4 bytes), its dedupe key as UTF-8, a 0x00 byte, then the line's UTF-8
 * bytes as they came. No key holds U+0000 (src/sink/line.ts refuses it), so
 * a key ends at its first 0x00 byte. The rows come back out a chunk at a
 * time, each a JSON array of lines ready for one set-based insert: in line
 * order, or in dedupe-key order.
 */

/** Slabs start small (most batches are) and double up to SLAB_BYTES. */
const FIRST_SLAB_BYTES = 64 * 1024;
const SLAB_BYTES = 4 * 1024 * 1024;
const HEAD = 4;
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

/** How a batch's rows are held while the rest of it is validated (./validate.ts). */
export interface BatchRows {
  readonly count: number;
  /** One valid line: its dedupe key, and the line (without its "\n") as text and as the UTF-8 bytes it came as. */
  append(key: string, text: string, bytes: Uint8Array): void;
}

export class AlertRows implements BatchRows {
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

  append(key: string, _text: string, line: Uint8Array): void {
    // Room for the worst case of the key (3 bytes per UTF-16 unit).
    const size = HEAD + key.length * 3 + 1 + line.byteLength;
    const slab = this.room(size);
    const start = this.used;
    const { written } = encoder.encodeInto(key, slab.subarray(start + HEAD));
    slab[start + HEAD + written] = 0;
    slab.set(line, start + HEAD + written + 1);
    const length = written + 1 + line.byteLength;
    setU32(slab, start, length);
    this.used = start + HEAD + length;
    this.recordBytes += HEAD + length;
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

  /** Byte by byte up to the key's end (its 0x00 byte, below every other byte). */
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

  /** The rows of `order` as JSON arrays of their lines, `maxRows` or about `maxBytes` of records at a time. */
  *chunks(order: Uint32Array, maxRows: number, maxBytes: number): Generator<string> {
    let lines: string[] = [];
    let bytes = 0;
    for (const row of order) {
      const slab = this.slabs[this.slabOf[row] ?? 0] ?? new Uint8Array();
      const start = this.offsetOf[row] ?? 0;
      const end = start + HEAD + u32(slab, start);
      lines.push(decoder.decode(slab.subarray(slab.indexOf(0, start + HEAD) + 1, end)));
      bytes += end - start;
      if (lines.length >= maxRows || bytes >= maxBytes) {
        yield jsonArray(lines);
        lines = [];
        bytes = 0;
      }
    }
    if (lines.length > 0) yield jsonArray(lines);
  }
}

function jsonArray(lines: readonly string[]): string {
  return `[${lines.join(",")}]`;
}

/**
 * The validated rows of a batch small enough for one statement, as the
 * lines' text, never packed and unpacked (the round trip AlertRows makes to
 * hold a large batch in little memory). A batch of at most
 * ONE_STATEMENT_BYTES takes about twice that in memory this way.
 */
export class AlertList implements BatchRows {
  private readonly lines: string[] = [];
  /** The dedupe keys, in line order: all a batch of stored rows needs (src/sink/sql.ts). */
  readonly keys: string[] = [];

  get count(): number {
    return this.lines.length;
  }

  append(key: string, text: string): void {
    this.lines.push(text);
    this.keys.push(key);
  }

  /** Every row, in line order, as the JSON array of lines the insert reads (src/sink/sql.ts). */
  json(): string {
    return jsonArray(this.lines);
  }
}

/** A batch of at most this many bytes is held as an AlertList and written in one statement. */
export const ONE_STATEMENT_BYTES = 1024 * 1024;
