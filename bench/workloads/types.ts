/**
 * A workload: one figure measured for ours and for each reference, each in a
 * subject process of its own on a fresh database. The sink, dispatcher and
 * end-to-end workloads plug in as more modules of this shape (workloads/index.ts).
 */

export interface Subject {
  /** Short, stable id used in the JSON and on the command line. */
  id: string;
  /** What the table calls it. */
  label: string;
  /** The subject's script, relative to bench/. */
  script: string;
  /** "state": a database migrated like the product's; "empty": the subject installs its own schema. */
  database: "state" | "empty";
  options: Record<string, number>;
}

export interface Reference extends Subject {
  /** Least acceptable ratio ours / reference (1.5 = ours at least 1.5× the reference); 0: shown, no target. */
  target: number;
}

/** An absolute target on one of ours' figures: its `extra` value (or the rate itself, key "rate"). */
export interface Check {
  /** "rate" (items per second) or a key of ours' `extra`. */
  key: string;
  /** What the table calls it, e.g. "p99 latency". */
  label: string;
  unit: string;
  /** "max": the median must be at most `limit`; "min": at least. */
  bound: "max" | "min";
  limit: number;
  /**
   * A reference's id: the figure is then the median of the per-round ratios
   * ours / that reference (same key, same round), and `limit` a ratio.
   */
  relativeTo?: string;
}

/** An `extra` figure shown next to a subject's rate in the table. */
export interface Detail {
  key: string;
  label: string;
  unit: string;
  /** Decimal places (default 0). */
  digits?: number;
}

export interface Workload {
  /** e.g. "queue-single"; selectable by id or by group on the command line. */
  id: string;
  group: string;
  /** The figure the table shows, e.g. "queue, one message per receive (10 consumers)". */
  title: string;
  /** Unit of the figure (items per second of the timed part). */
  unit: string;
  /** What one item is, for the count in the table ("msgs", "rows", "tasks"…). */
  items?: string;
  /** Items per round, full and --quick. */
  count: number;
  quickCount: number;
  ours: Subject;
  references: Reference[];
  /** `extra` figures shown beside each subject's rate, e.g. latency percentiles. */
  details?: Detail[];
  /** Absolute targets on ours' figures (latency, memory, a floor rate). */
  checks?: Check[];
  /** Why this workload cannot run here (a missing tool), or undefined when it can. */
  unavailable?: () => string | undefined;
  /** Options every subject of this workload takes, and their --quick values. */
  common?: { full: Record<string, number>; quick: Record<string, number> };
  /** Per-subject timeout in ms (default 180 s, 60 s with --quick). */
  timeoutMs?: number;
}
