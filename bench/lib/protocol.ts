/**
 * How run.ts and a subject process talk: the parameters go in as one JSON
 * argument, the measurement comes back as one JSON line on stdout prefixed
 * with RESULT_PREFIX (anything else a library prints is ignored).
 */

export const RESULT_PREFIX = "BENCH_RESULT ";

export interface SubjectParams {
  /** The database this subject owns for this round. */
  url: string;
  /** Messages (or rows, or requests) to process. */
  count: number;
  /** Per-workload knobs: batch size, concurrency... */
  options: Record<string, number>;
}

export interface Measurement {
  /** Items processed in the timed part. */
  items: number;
  /** Seconds of the timed part. */
  seconds: number;
  /** Other figures worth keeping in the JSON (untimed setup, etc.). */
  extra?: Record<string, number>;
}

export function readParams(): SubjectParams {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error("a subject takes its parameters as one JSON argument");
  const parsed: unknown = JSON.parse(raw);
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    !("url" in parsed) ||
    typeof parsed.url !== "string" ||
    !("count" in parsed) ||
    typeof parsed.count !== "number" ||
    !("options" in parsed) ||
    typeof parsed.options !== "object" ||
    parsed.options === null
  ) {
    throw new Error(`bad subject parameters: ${raw}`);
  }
  const options: Record<string, number> = {};
  for (const [k, v] of Object.entries(parsed.options)) {
    if (typeof v === "number") options[k] = v;
  }
  return { url: parsed.url, count: parsed.count, options };
}

export function option(params: SubjectParams, name: string): number {
  const value = params.options[name];
  if (value === undefined) throw new Error(`subject option ${name} is missing`);
  return value;
}

/** Runs a subject's main, prints its measurement, and exits (libraries may leave handles open). */
export function subjectMain(main: (params: SubjectParams) => Promise<Measurement>): void {
  main(readParams()).then(
    (m) => {
      process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(m)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exit(1);
    },
  );
}

/** Seconds since `start` (from performance.now()). */
export function since(start: number): number {
  return (performance.now() - start) / 1000;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
