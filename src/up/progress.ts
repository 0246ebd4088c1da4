import type { DemoProgress } from "../reads/progress";

/** How `harness up --demo` shows progress (the queries are in src/reads/progress.ts). */

export function isDemoDone(p: DemoProgress): boolean {
  return p.succeeded + p.failed === p.total && p.pendingWork === 0;
}

export function formatProgress(p: DemoProgress, elapsedMs: number): string {
  const done = p.succeeded + p.failed;
  const rate = elapsedMs > 0 ? (done / (elapsedMs / 1000)).toFixed(1) : "0.0";
  return `tasks ${done}/${p.total} done (${p.failed} failed) · rows ${p.rows} · dead letters ${p.deadLetters} · ${rate} tasks/s`;
}

/** Writes progress: one redrawn line on a terminal, plain lines otherwise. */
export function progressWriter(out: NodeJS.WriteStream): {
  update(line: string): void;
  end(): void;
} {
  let last = "";
  return {
    update(line) {
      if (line === last) return;
      last = line;
      if (out.isTTY) out.write(`\r\x1b[K${line}`);
      else out.write(`${line}\n`);
    },
    end() {
      if (out.isTTY && last !== "") out.write("\n");
    },
  };
}
