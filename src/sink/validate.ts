import { MAX_LINE_BYTES } from "../contracts/alert";
import { type Failure, invalidBatch, invalidLine } from "./failure";
import { parseLine } from "./line";
import { AlertList, AlertRows, ONE_STATEMENT_BYTES } from "./rows";

/**
 * Batch validation, line by line as the bytes stream in: a batch is checked
 * whole before any write (invariant 5), yet the sink holds only the text of
 * the chunk in hand (a line is at most MAX_LINE_BYTES, and one that spans
 * chunks waits as bytes) plus the rows of the lines already valid, packed
 * (src/sink/rows.ts). The first problem makes the whole batch poison,
 * with a reason naming the line: `line 3: severity: Invalid type…`.
 *
 * Here: strict UTF-8 per line (a "\n" byte is never inside a UTF-8
 * sequence, so per line is the same as whole), every line ended by "\n" (a
 * missing final newline means a truncated batch), the line length cap. What
 * a line may say: src/sink/line.ts and the AlertLine contract.
 */

export type BatchCheck =
  | { ok: true; rows: AlertRows | AlertList }
  | { ok: false; failure: Failure };

const NEWLINE = 0x0a;
const BOM = "\ufeff";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Validates a batch for the task's org as its chunks arrive: `push` each
 * chunk, then `end`. Either returns the failure once one is found (later
 * calls are not needed). `bytes`, the batch's size, picks how its rows are
 * held: as they are up to ONE_STATEMENT_BYTES, packed beyond.
 */
export class BatchValidator {
  private readonly rows: AlertRows | AlertList;
  /** The pieces of the line not yet ended, and their length. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private line = 1;

  constructor(
    private readonly orgId: string,
    bytes: number,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {
    this.rows = bytes <= ONE_STATEMENT_BYTES ? new AlertList() : new AlertRows();
  }

  push(chunk: Uint8Array): Failure | undefined {
    let start = 0;
    if (this.pendingBytes > 0) {
      // The line an earlier chunk began, up to its end here (if it ends here).
      const end = chunk.indexOf(NEWLINE);
      start = end < 0 ? chunk.byteLength : end + 1;
      const failure = this.lineByLine(chunk.subarray(0, start));
      if (failure !== undefined) return failure;
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= start) {
      const failure = this.wholeLines(chunk.subarray(start, last + 1));
      if (failure !== undefined) return failure;
      start = last + 1;
    }
    // The start of a line that a later chunk ends.
    return this.lineByLine(chunk.subarray(start));
  }

  /**
   * Lines that all end within `bytes` (it ends with "\n"), decoded in one
   * call rather than one call each (the sink's CPU per 1,000-line batch:
   * 0.3-0.4 ms less). Should a line be over the cap or not UTF-8, nothing is
   * taken here, and lineByLine finds which line it is. Each line reads as its
   * own decoded text would: a byte-order mark that begins it is dropped, as
   * the decoder drops the first one.
   */
  private wholeLines(bytes: Uint8Array): Failure | undefined {
    for (let at = 0; at < bytes.byteLength; ) {
      const end = bytes.indexOf(NEWLINE, at);
      // The "\n" counts towards the cap too.
      if (end - at + 1 > this.maxLineBytes) return this.lineByLine(bytes);
      at = end + 1;
    }
    let text: string;
    try {
      text = strictUtf8.decode(bytes.subarray(0, bytes.byteLength - 1));
    } catch {
      return this.lineByLine(bytes);
    }
    for (const [i, line] of text.split("\n").entries()) {
      const failure = this.takeLine(i > 0 && line.startsWith(BOM) ? line.slice(1) : line);
      if (failure !== undefined) return failure;
    }
    return undefined;
  }

  /** `bytes` a line at a time, the last one kept pending unless it ends in "\n". */
  private lineByLine(bytes: Uint8Array): Failure | undefined {
    let start = 0;
    while (start < bytes.byteLength) {
      const end = bytes.indexOf(NEWLINE, start);
      const stop = end < 0 ? bytes.byteLength : end;
      // The "\n" counts towards the cap too.
      if (this.pendingBytes + (stop - start) + 1 > this.maxLineBytes) {
        return invalidLine(this.line, `longer than ${this.maxLineBytes} bytes`);
      }
      this.pending.push(bytes.subarray(start, stop));
      this.pendingBytes += stop - start;
      if (end < 0) return undefined;
      const failure = this.endLine();
      if (failure !== undefined) return failure;
      start = end + 1;
    }
    return undefined;
  }

  end(): BatchCheck {
    if (this.pendingBytes > 0) {
      return {
        ok: false,
        failure: invalidLine(this.line, 'truncated (the batch does not end with "\\n")'),
      };
    }
    if (this.line === 1) return { ok: false, failure: invalidBatch("empty batch") };
    return { ok: true, rows: this.rows };
  }

  private endLine(): Failure | undefined {
    const bytes = concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      return invalidLine(this.line, "invalid UTF-8");
    }
    return this.takeLine(text);
  }

  /** The next line's text, checked and, when valid, kept. */
  private takeLine(text: string): Failure | undefined {
    const alert = parseLine(text, this.orgId);
    if (typeof alert === "string") return invalidLine(this.line, alert);
    this.rows.append(alert);
    this.line++;
    return undefined;
  }
}

/** Validates a whole batch held in memory (tests and benchmarks): the same rules, one chunk. */
export function checkBatch(bytes: Uint8Array, orgId: string): BatchCheck {
  const v = new BatchValidator(orgId, bytes.byteLength);
  const failure = v.push(bytes);
  return failure === undefined ? v.end() : { ok: false, failure };
}
