/**
 * Splits a byte stream into lines ("\n"), synchronously, chunk by chunk, so
 * that a caller handles millions of lines without a promise per line. A
 * line never grows past `maxLineBytes`: memory stays bounded whatever the
 * program prints. Lines are handed over as views of the chunk (valid until
 * the callback returns) without their "\n".
 */

/** Return false to stop: the rest of the chunk is dropped, and so is every later push. */
export type OnLine = (line: Uint8Array, overlong: boolean) => boolean;

const NEWLINE = 10;

export class LineSplitter {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  /** Inside an overlong line: its rest is dropped up to the next newline. */
  private skipping = false;
  private stopped = false;

  constructor(private readonly maxLineBytes: number) {}

  push(chunk: Uint8Array, onLine: OnLine): boolean {
    if (this.stopped) return false;
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const ok = this.emit(chunk.subarray(start, nl), onLine);
      start = nl + 1;
      this.skipping = false;
      if (!ok) return this.stop();
    }
    if (start < chunk.byteLength) return this.keep(chunk.subarray(start), onLine);
    return true;
  }

  /** The last line, when the stream ended without a newline after it. */
  end(onLine: OnLine): boolean {
    if (this.stopped) return false;
    if (this.carryBytes === 0 || this.skipping) return true;
    const ok = this.emit(new Uint8Array(0), onLine);
    return ok || this.stop();
  }

  private stop(): false {
    this.stopped = true;
    this.carry = [];
    this.carryBytes = 0;
    return false;
  }

  /** A line's end: with what was carried over from earlier chunks, if anything. */
  private emit(tail: Uint8Array, onLine: OnLine): boolean {
    if (this.skipping) return true;
    if (this.carryBytes === 0) {
      if (tail.byteLength <= this.maxLineBytes) return onLine(tail, false);
      return onLine(tail.subarray(0, this.maxLineBytes), true);
    }
    const whole = this.joined(tail);
    if (whole.byteLength <= this.maxLineBytes) return onLine(whole, false);
    return onLine(whole.subarray(0, this.maxLineBytes), true);
  }

  /** A partial line at the end of a chunk: copied (the chunk is not ours to keep), or cut when too long. */
  private keep(part: Uint8Array, onLine: OnLine): boolean {
    if (this.skipping) return true;
    if (this.carryBytes + part.byteLength <= this.maxLineBytes) {
      this.carry.push(part.slice());
      this.carryBytes += part.byteLength;
      return true;
    }
    const whole = this.joined(part);
    this.skipping = true;
    return onLine(whole.subarray(0, this.maxLineBytes), true) || this.stop();
  }

  private joined(tail: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.carryBytes + tail.byteLength);
    let at = 0;
    for (const c of this.carry) {
      out.set(c, at);
      at += c.byteLength;
    }
    out.set(tail, at);
    this.carry = [];
    this.carryBytes = 0;
    return out;
  }
}
