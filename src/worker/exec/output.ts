import type { BatchWriter } from "./batches";
import { checkLine, type LineContext, MAX_LINE_BYTES } from "./check";
import { LineSplitter } from "./lines";

/**
 * A program's stdout into batch lines: split, checked and handed to the
 * writer chunk by chunk, flushing (with the store's backpressure) after
 * each chunk, so a program that prints faster than the store takes it
 * waits on its pipe. The first bad line ends the reading, with its reason.
 */

export type OutputResult = { lines: number } | { bad: string } | { halted: true };

export async function readOutput(
  stdout: ReadableStream<Uint8Array>,
  writer: BatchWriter,
  ctx: LineContext,
  halted: AbortSignal,
): Promise<OutputResult> {
  const splitter = new LineSplitter(MAX_LINE_BYTES);
  let index = 0;
  let bad: string | undefined;
  const onLine = (bytes: Uint8Array, overlong: boolean): boolean => {
    const checked = overlong
      ? { ok: false as const, reason: `line ${index + 1} is longer than ${MAX_LINE_BYTES} bytes` }
      : checkLine(bytes, index, ctx);
    if (!checked.ok) {
      bad = checked.reason;
      return false;
    }
    writer.add(checked.json);
    index += 1;
    return true;
  };
  const reader = stdout.getReader();
  // Halting closes the pipe: a program still printing gets EPIPE, nothing more is read.
  const cancel = () => void reader.cancel().catch(() => {});
  halted.addEventListener("abort", cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || halted.aborted) break;
      if (!splitter.push(value, onLine)) break;
      await writer.flush();
    }
    if (halted.aborted) return { halted: true };
    if (bad === undefined) splitter.end(onLine);
    return bad === undefined ? { lines: index } : { bad };
  } finally {
    halted.removeEventListener("abort", cancel);
    if (bad !== undefined) cancel();
  }
}
