import { join } from "node:path";
import { ALLOCATOR_ENV } from "./allocator";
import { type Measurement, RESULT_PREFIX, type SubjectParams } from "./protocol";

const BENCH_DIR = join(import.meta.dir, "..");

/** Runs one subject in a process of its own (no state leaks between subjects) and returns its measurement. */
export async function runSubject(
  script: string,
  params: SubjectParams,
  timeoutMs: number,
): Promise<Measurement> {
  const child = Bun.spawn([process.execPath, join(BENCH_DIR, script), JSON.stringify(params)], {
    cwd: BENCH_DIR,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...ALLOCATOR_ENV, NO_COLOR: "1" },
  });
  const timer = setTimeout(() => child.kill(), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  const line = stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
  if (code !== 0 || line === undefined) {
    const tail = stderr.trim().split("\n").slice(-5).join("\n");
    throw new Error(
      `${script} exited ${code}${child.signalCode ? ` (${child.signalCode})` : ""}: ${tail}`,
    );
  }
  const parsed: unknown = JSON.parse(line.slice(RESULT_PREFIX.length));
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    !("items" in parsed) ||
    typeof parsed.items !== "number" ||
    !("seconds" in parsed) ||
    typeof parsed.seconds !== "number"
  ) {
    throw new Error(`${script} printed a bad result: ${line}`);
  }
  const extra: Record<string, number> = {};
  if ("extra" in parsed && typeof parsed.extra === "object" && parsed.extra !== null) {
    for (const [k, v] of Object.entries(parsed.extra)) if (typeof v === "number") extra[k] = v;
  }
  return { items: parsed.items, seconds: parsed.seconds, extra };
}
