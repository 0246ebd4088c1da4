import type { DeadLetter, QueueAdmin } from "../queue/seam";
import type { Dlq, DlqGroup } from "./contract";

/**
 * The DLQ page: dead letters grouped by queue and reason. A reason's
 * particulars — ids, URIs, numbers, quoted values, the "(dead-lettered after
 * N receives)" suffix — are blanked, so batches that failed the same way
 * fall into one group. Redrive moves one letter, or every listed letter of a
 * group, back to its queue.
 */

/** Dead letters listed at most: the page and a group's redrive are bounded by it. */
export const DLQ_LIMIT = 1000;
const SAMPLE_PAYLOAD_CHARS = 2000;

export function blankReason(reason: string | null): string {
  if (reason === null) return "(no reason recorded)";
  return reason
    .replace(/ \(dead-lettered after \d+ receives\)$/, "")
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "<uri>")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<id>")
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\b\d+(\.\d+)?\b/g, "N");
}

function taskIdOf(payload: unknown): string | null {
  if (typeof payload !== "object" || payload === null || !("task_id" in payload)) return null;
  return typeof payload.task_id === "string" ? payload.task_id : null;
}

function preview(payload: unknown): string {
  const text = JSON.stringify(payload, null, 2) ?? "null";
  return text.length > SAMPLE_PAYLOAD_CHARS ? `${text.slice(0, SAMPLE_PAYLOAD_CHARS)}…` : text;
}

export function groupDeadLetters(letters: readonly DeadLetter[]): DlqGroup[] {
  const groups = new Map<string, DeadLetter[]>();
  for (const d of letters) {
    const key = `${d.queue}\u0000${blankReason(d.lastError)}`;
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [d]);
    else list.push(d);
  }
  return [...groups.values()].flatMap((list) => {
    const first = list[0];
    if (first === undefined) return [];
    const receives = list.map((d) => d.receiveCount);
    return [
      {
        queue: first.queue,
        reason: blankReason(first.lastError),
        count: list.length,
        receives: { min: Math.min(...receives), max: Math.max(...receives) },
        sample: {
          id: first.id,
          reason: first.lastError ?? "(no reason recorded)",
          payload: preview(first.payload),
          created_at: first.createdAt.toISOString(),
        },
        letters: list.map((d) => ({
          id: d.id,
          task_id: taskIdOf(d.payload),
          receive_count: d.receiveCount,
          created_at: d.createdAt.toISOString(),
        })),
      },
    ];
  });
}

export async function dlqView(admin: QueueAdmin, now: () => Date): Promise<Dlq> {
  const [letters, depths] = await Promise.all([
    admin.listDeadLetters({ limit: DLQ_LIMIT }),
    admin.depths(),
  ]);
  const groups = groupDeadLetters(letters).sort((a, b) => b.count - a.count);
  return {
    at: now().toISOString(),
    groups,
    dead: Object.fromEntries(depths.map((d) => [d.queue, d.dead])),
    listed: letters.length,
  };
}

/** Redrives one letter (`id`) or every listed letter of the queue with the blanked `reason`. */
export async function redriveLetters(
  admin: QueueAdmin,
  p: { queue: DeadLetter["queue"]; id?: string; reason?: string },
): Promise<number> {
  if (p.id !== undefined) return admin.redrive({ queue: p.queue, id: p.id });
  const letters = await admin.listDeadLetters({ queues: [p.queue], limit: DLQ_LIMIT });
  const ids = letters.filter((d) => blankReason(d.lastError) === p.reason).map((d) => d.id);
  let moved = 0;
  for (const id of ids) moved += await admin.redrive({ queue: p.queue, id });
  return moved;
}
