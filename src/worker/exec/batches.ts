import { NDJSON } from "../../contracts/common";
import type { ObjectStore } from "../../objectstore/index";

/**
 * Streams checked lines into the object store while the program still runs:
 * one object at a time, each at most `maxBatchBytes` (the largest batch
 * buffer-publish accepts), a new one started when the next line would not
 * fit, at most `maxBatches` of them. Lines are encoded into a fixed buffer
 * and written in chunks of it, with the store's backpressure: memory stays
 * bounded whatever the output's length. Each object is a store create under
 * a fresh key. Nothing is published here: on failure every object written,
 * or begun, is deleted.
 */

export interface Batch {
  uri: string;
  key: string;
  size: number;
  lines: number;
}

export class TooMuchOutputError extends Error {
  override name = "TooMuchOutputError";
}

const CHUNK_BYTES = 64 * 1024;

interface Open {
  key: string;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  put: Promise<{ uri: string; size: number }>;
  lines: number;
}

/** A chunk of encoded lines, or the end of one object (the next chunk starts another). */
type Pending = { chunk: Uint8Array; lines: number } | "rollover";

export class BatchWriter {
  private readonly encoder = new TextEncoder();
  private buffer = new Uint8Array(CHUNK_BYTES);
  private used = 0;
  private bufferLines = 0;
  private pending: Pending[] = [];
  /** Bytes of the object being filled, counting lines still buffered. */
  private objectBytes = 0;
  private open: Open | undefined;
  private readonly done: Batch[] = [];
  private objects = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly keyFor: () => string,
    private readonly limits: { maxBatchBytes: number; maxBatches: number },
  ) {}

  /** Adds one line (without "\n"). Synchronous: call flush() after a run of adds. */
  add(json: string): void {
    // A UTF-16 unit never takes more than 3 bytes in UTF-8.
    const most = json.length * 3 + 1;
    if (most > this.buffer.byteLength - this.used) this.spill(most);
    const { written } = this.encoder.encodeInto(json, this.buffer.subarray(this.used));
    const bytes = written + 1;
    if (bytes > this.limits.maxBatchBytes) {
      throw new TooMuchOutputError(
        `a line of ${bytes} bytes is over the ${this.limits.maxBatchBytes} byte batch limit`,
      );
    }
    if (this.objectBytes + bytes > this.limits.maxBatchBytes) {
      // The line starts the next object: what is buffered before it ends this one.
      const line = this.buffer.slice(this.used, this.used + written);
      this.pushBuffer();
      this.pending.push("rollover");
      this.objectBytes = 0;
      this.buffer.set(line, 0);
    }
    this.used += written;
    this.buffer[this.used++] = 10;
    this.bufferLines += 1;
    this.objectBytes += bytes;
  }

  /** Writes what is buffered, waiting on the store (backpressure). */
  async flush(final = false): Promise<void> {
    if (final) this.pushBuffer();
    const pending = this.pending;
    this.pending = [];
    for (const item of pending) {
      if (item === "rollover") await this.close();
      else await this.write(item);
    }
  }

  /** Ends the last object; the batches written, in order (none for no lines). */
  async finish(): Promise<Batch[]> {
    await this.flush(true);
    await this.close();
    return this.done;
  }

  /** Abandons the object being written and deletes every finished one. */
  async abort(): Promise<void> {
    this.pending = [];
    const open = this.open;
    this.open = undefined;
    if (open !== undefined) {
      await open.writer.abort(new Error("batch abandoned")).catch(() => {});
      await open.put.catch(() => {});
      await this.store.delete(open.key);
    }
    for (const b of this.done.splice(0)) await this.store.delete(b.key);
  }

  private spill(most: number): void {
    this.pushBuffer();
    const size = Math.max(most, CHUNK_BYTES);
    if (size !== this.buffer.byteLength) this.buffer = new Uint8Array(size);
  }

  private pushBuffer(): void {
    if (this.used === 0) return;
    this.pending.push({ chunk: this.buffer.slice(0, this.used), lines: this.bufferLines });
    this.used = 0;
    this.bufferLines = 0;
  }

  private async write(item: { chunk: Uint8Array; lines: number }): Promise<void> {
    const open = this.open ?? this.start();
    open.lines += item.lines;
    try {
      await open.writer.ready;
    } catch (err) {
      throw await failureOf(open, err);
    }
    // A failed write errors the stream: the next wait, or close, reports it.
    open.writer.write(item.chunk).catch(() => {});
  }

  private start(): Open {
    if (this.objects >= this.limits.maxBatches) {
      throw new TooMuchOutputError(
        `the output needs more than ${this.limits.maxBatches} batches of at most ${this.limits.maxBatchBytes} bytes`,
      );
    }
    this.objects += 1;
    const key = this.keyFor();
    const stream = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      { highWaterMark: 4 },
      { highWaterMark: 4 },
    );
    const writer = stream.writable.getWriter();
    const put = this.store.create(key, stream.readable, { contentType: NDJSON });
    // A failed create errors the writable side, so a wait on it ends.
    put.catch((err: unknown) => writer.abort(err).catch(() => {}));
    this.open = { key, writer, put, lines: 0 };
    return this.open;
  }

  private async close(): Promise<void> {
    const open = this.open;
    if (open === undefined) return;
    this.open = undefined;
    try {
      await open.writer.close();
    } catch (err) {
      throw await failureOf(open, err);
    }
    const { uri, size } = await open.put;
    this.done.push({ uri, key: open.key, size, lines: open.lines });
  }
}

/** The put's own error when it failed, else the stream's. */
function failureOf(open: Open, err: unknown): Promise<unknown> {
  return open.put.then(
    () => err,
    (putErr: unknown) => putErr,
  );
}
