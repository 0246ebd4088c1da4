import * as v from "valibot";
import { SyntheticPayload } from "../contracts/task";
import type { Db } from "../db/connect";
import type { QueueAdmin } from "../queue/seam";
import {
  type AuditAlert,
  type AuditTask,
  auditAlerts,
  auditAttempts,
  auditOutbox,
  auditTasks,
} from "../reads/audit";
import { dedupeKey } from "../worker/alerts";
import { checkDrained, type DrainFindings } from "./drained";
import { checkFencing, type FencingFindings, type FencingInput } from "./fencing";
import { queueLeftovers } from "./queues";

/**
 * Checks the invariants of ../shared/DESIGN.md over the tasks of one org at
 * the end of a run, from the databases and the queues.
 */

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  tasks: { total: number; queued: number; running: number; succeeded: number; failed: number };
  rows: { expected: number; found: number; missing: number; unexpected: number; wrongOrg: number };
  attempts: { max: number; retried: number };
  outbox: { pending: number; staleRows: number };
  fencing: { staleWrites: number; staleRenewals: number; renewalsSeen: number };
  deadLetters: Record<string, number>;
  invariants: Invariant[];
}

/** The dedupe keys a task's payload describes: from the task and index, or the explicit key. */
export function expectedKeys(taskId: string, payload: unknown): string[] {
  const parsed = v.safeParse(SyntheticPayload, payload);
  if (!parsed.success) return [];
  const alerts = parsed.output.alerts;
  if (typeof alerts === "number")
    return Array.from({ length: alerts }, (_, i) => dedupeKey(taskId, i));
  return alerts.map((a, i) => a.dedupe_key ?? dedupeKey(taskId, i));
}

const sample = (items: readonly string[]) =>
  items.length === 0
    ? ""
    : ` (e.g. ${items.slice(0, 3).join(", ")}${items.length > 3 ? ", …" : ""})`;

interface RowFindings {
  expected: number;
  found: number;
  missing: string[];
  unexpected: string[];
  wrongOrg: number;
}

/** Succeeded tasks must have every row; a failed task may have published before it failed. */
function checkRows(
  tasks: readonly AuditTask[],
  alerts: readonly AuditAlert[],
  poison: ReadonlySet<string>,
): RowFindings {
  const expected = new Map<string, string>();
  const allowed = new Map<string, string>();
  for (const t of tasks) {
    if (poison.has(t.id) || (t.status !== "succeeded" && t.status !== "failed")) continue;
    for (const key of expectedKeys(t.id, t.payload)) {
      allowed.set(key, t.org_id);
      if (t.status === "succeeded") expected.set(key, t.org_id);
    }
  }
  const found = new Map(alerts.map((a) => [a.dedupe_key, a]));
  const wrongOrg = alerts.filter(
    (a) => allowed.has(a.dedupe_key) && allowed.get(a.dedupe_key) !== a.org_id,
  );
  return {
    expected: expected.size,
    found: found.size,
    missing: [...expected.keys()].filter((k) => !found.has(k)),
    unexpected: [...found.keys()].filter((k) => !allowed.has(k)),
    wrongOrg: wrongOrg.length,
  };
}

export interface CheckOptions {
  orgId: string;
  allowFailed?: boolean;
  poisonTaskIds?: readonly string[];
  /** Leases verify saw the dispatchers grant (its proxy watches the workers' links). */
  observed?: FencingInput["observed"];
  /**
   * The run's queues, read through the seam (depths, dead letters), so the
   * queue findings mean the same on pgqueue and on a broker. Their live
   * messages count whoever they are for: a run has its queues to itself
   * (verify's claim on the database, a namespace of its own on a broker).
   */
  queues: QueueAdmin;
}

interface Findings {
  tasks: CheckReport["tasks"];
  rows: RowFindings;
  fencing: FencingFindings;
  drained: DrainFindings;
}

function taskCounts(tasks: readonly AuditTask[]): CheckReport["tasks"] {
  const count = (s: AuditTask["status"]) => tasks.filter((t) => t.status === s).length;
  return {
    total: tasks.length,
    queued: count("queued"),
    running: count("running"),
    succeeded: count("succeeded"),
    failed: count("failed"),
  };
}

export async function checkInvariants(state: Db, data: Db, p: CheckOptions): Promise<CheckReport> {
  const tasks = await auditTasks(state, { orgId: p.orgId });
  const ids = tasks.map((t) => t.id);
  const [alerts, outbox, attempts, leftovers] = await Promise.all([
    auditAlerts(data, { taskIds: ids, orgId: p.orgId }),
    auditOutbox(state, { taskIds: ids }),
    auditAttempts(state, { taskIds: ids }),
    queueLeftovers(p.queues, { taskIds: ids }),
  ]);
  const poison = new Set(p.poisonTaskIds ?? []);
  const f: Findings = {
    tasks: taskCounts(tasks),
    rows: checkRows(tasks, alerts, poison),
    fencing: checkFencing({ tasks, attempts, outbox, observed: p.observed }),
    drained: checkDrained(outbox, leftovers, poison.size > 0),
  };
  const invariants = invariantsOf(f, p);
  return {
    ok: invariants.every((i) => i.ok),
    tasks: f.tasks,
    rows: {
      expected: f.rows.expected,
      found: f.rows.found,
      missing: f.rows.missing.length,
      unexpected: f.rows.unexpected.length,
      wrongOrg: f.rows.wrongOrg,
    },
    attempts: {
      max: Math.max(0, ...tasks.map((t) => t.attempt)),
      retried: tasks.filter((t) => t.attempt > 1).length,
    },
    outbox: { pending: f.drained.pending, staleRows: f.fencing.staleWrites.length },
    fencing: {
      staleWrites: f.fencing.staleWrites.length,
      staleRenewals: f.fencing.staleRenewals.length,
      renewalsSeen: f.fencing.renewalsSeen,
    },
    deadLetters: f.drained.deadLetters,
    invariants,
  };
}

function invariantsOf(
  { tasks: t, rows, fencing, drained }: Findings,
  p: CheckOptions,
): Invariant[] {
  return [
    {
      name: "every task finished (no task stuck)",
      ok: t.succeeded + t.failed === t.total && (p.allowFailed === true || t.failed === 0),
      detail: `${t.succeeded} succeeded, ${t.failed} failed, ${t.running} running, ${t.queued} queued of ${t.total}`,
    },
    {
      name: "exactly the expected rows, each once, with the task's org",
      ok: rows.missing.length === 0 && rows.unexpected.length === 0 && rows.wrongOrg === 0,
      detail: `expected ${rows.expected}, found ${rows.found}; missing ${rows.missing.length}${sample(rows.missing)}; unexpected ${rows.unexpected.length}${sample(rows.unexpected)}; wrong org ${rows.wrongOrg}`,
    },
    fencingInvariant(fencing, p.observed !== undefined),
    {
      name: "each succeeded task completed exactly once, by its last attempt",
      ok: fencing.badCompletions.length === 0,
      detail: `${fencing.badCompletions.length} task(s) otherwise${sample(fencing.badCompletions)}`,
    },
    {
      name: "the outbox drained and the queues are empty",
      ok: drained.pending === 0 && drained.liveMessages === 0,
      detail: `${drained.pending} pending outbox row(s), ${drained.liveMessages} live message(s)`,
    },
    {
      name: "no outbox row of the run's tasks was rejected",
      ok: drained.rejected.length === 0,
      detail: `${drained.rejected.length} rejected row(s)${sample(drained.rejected)}`,
    },
    {
      name: "no dead letters except the injected poison",
      ok: drained.unexpectedDead === 0,
      detail: JSON.stringify(drained.deadLetters),
    },
  ];
}

export const FENCING_INVARIANT = "no attempt changed anything after it was fenced out";

function fencingInvariant(f: FencingFindings, watched: boolean): Invariant {
  const stale = [...f.staleWrites, ...f.staleRenewals];
  const renewals = watched
    ? `; ${f.staleRenewals.length} stale lease renewal(s) of ${f.renewalsSeen} seen`
    : "";
  return {
    name: FENCING_INVARIANT,
    ok: stale.length === 0,
    detail: `${f.staleWrites.length} stale outbox row(s)${renewals}${sample(stale)}`,
  };
}
