import * as v from "valibot";
import { config } from "../config";
import { DeadLetterEnvelope, QUEUE_NAMES, type QueueName } from "../contracts/queue";
import { openQueue } from "../queue/open";
import type { QueueAdmin } from "../queue/seam";
import { harnessCommand, UsageError } from "./_command";

/** `harness dlq list` and `harness dlq redrive`: inspect dead letters and move them back. */

function queueFlag(value: unknown): QueueName | undefined {
  if (value === undefined || value === "") return undefined;
  const found = QUEUE_NAMES.find((q) => q === value);
  if (found === undefined) {
    throw new UsageError(`--queue must be one of ${QUEUE_NAMES.join(", ")}, got ${String(value)}`);
  }
  return found;
}

function idFlag(value: unknown): string | undefined {
  if (value === undefined || value === "") return undefined;
  const text = String(value);
  if (!/^\d{1,19}$/.test(text)) throw new UsageError(`--id must be a message id, got ${text}`);
  return text;
}

async function withAdmin<T>(work: (admin: QueueAdmin) => Promise<T>): Promise<T> {
  const backend = await openQueue(config(), { name: "dlq", connections: 1 });
  try {
    return await work(backend.admin());
  } finally {
    await backend.close();
  }
}

async function envelopes(
  admin: QueueAdmin,
  queue: QueueName | undefined,
): Promise<DeadLetterEnvelope[]> {
  const letters = await admin.listDeadLetters(queue === undefined ? {} : { queues: [queue] });
  return letters.map((d) =>
    v.parse(DeadLetterEnvelope, {
      id: d.id,
      queue: d.queue,
      payload: d.payload,
      receive_count: d.receiveCount,
      last_error: d.lastError,
      created_at: d.createdAt.toISOString(),
    }),
  );
}

/**
 * The one queue whose dead letters hold `id`. On pgqueue ids are unique
 * across queues; on NATS each queue numbers its own (stream sequences), so
 * the same id may be a dead letter of two queues: then `--queue` must say
 * which, rather than this guessing.
 */
async function queueOf(admin: QueueAdmin, id: string): Promise<QueueName> {
  const letters = await admin.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER });
  const queues = letters.filter((d) => d.id === id).map((d) => d.queue);
  const [only, ...more] = queues;
  if (only === undefined) throw new Error(`no dead letter with id ${id}`);
  if (more.length > 0) {
    throw new UsageError(
      `id ${id} is a dead letter of ${queues.join(" and ")} (each queue numbers its own on NATS): add --queue`,
    );
  }
  return only;
}

function describeLetter(d: DeadLetterEnvelope): string {
  const p = d.payload;
  const task =
    typeof p === "object" && p !== null && "task_id" in p ? ` task ${String(p.task_id)}` : "";
  return `${d.id}\t${d.queue}${task}\treceives ${d.receive_count}\t${d.created_at}\n  reason: ${d.last_error ?? "(none recorded)"}\n`;
}

const list = harnessCommand({
  name: "dlq list",
  description: "Show dead letters with their reasons and receive counts",
  args: {
    queue: { type: "string", description: `only this queue (${QUEUE_NAMES.join(", ")})` },
    json: { type: "boolean", description: "print a JSON array", default: false },
  },
  checks: { databases: ["queue"], schema: true, oneShot: true },
  async run({ args }) {
    const queue = queueFlag(args.queue);
    const letters = await withAdmin((admin) => envelopes(admin, queue));
    if (args.json) {
      process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
      return;
    }
    if (letters.length === 0) {
      process.stdout.write("no dead letters\n");
      return;
    }
    for (const d of letters) process.stdout.write(describeLetter(d));
  },
});

const redriveCommand = harnessCommand({
  name: "dlq redrive",
  description: "Move dead letters back to their queue (all, one queue's, or one by --id)",
  args: {
    queue: { type: "string", description: `only this queue (${QUEUE_NAMES.join(", ")})` },
    id: { type: "string", description: "only this message id" },
  },
  checks: { databases: ["queue"], schema: true, oneShot: true },
  async run({ args }) {
    const queue = queueFlag(args.queue);
    const id = idFlag(args.id);
    const moved = await withAdmin(async (admin) => {
      const queues =
        queue !== undefined ? [queue] : id !== undefined ? [await queueOf(admin, id)] : QUEUE_NAMES;
      const one = id === undefined ? {} : { id };
      const counts = await Promise.all(queues.map((q) => admin.redrive({ queue: q, ...one })));
      return queues.map((q, i) => ({ queue: q, n: counts[i] ?? 0 }));
    });
    const total = moved.reduce((sum, m) => sum + m.n, 0);
    if (id !== undefined && total === 0) throw new Error(`no dead letter with id ${id}`);
    for (const m of moved.filter((x) => x.n > 0)) {
      process.stdout.write(`redrove ${m.n} message(s) from ${m.queue}.dlq to ${m.queue}\n`);
    }
    if (total === 0) process.stdout.write("no dead letters to redrive\n");
  },
});

export default harnessCommand({
  name: "dlq",
  description: "Inspect and redrive dead letters",
  args: {},
  subCommands: { list, redrive: redriveCommand },
});
