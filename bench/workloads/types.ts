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
  /** Least acceptable ratio ours / reference (1.5 = ours at least 1.5× the reference). */
  target: number;
}

export interface Workload {
  /** e.g. "queue-single"; selectable by id or by group on the command line. */
  id: string;
  group: string;
  /** The figure the table shows, e.g. "queue, one message per receive (10 consumers)". */
  title: string;
  /** Unit of the figure (items per second of the timed part). */
  unit: string;
  /** Items per round, full and --quick. */
  count: number;
  quickCount: number;
  ours: Subject;
  references: Reference[];
}
