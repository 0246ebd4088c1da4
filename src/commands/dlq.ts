import * as v from "valibot";
import { config, requireStateDatabase } from "../config";
import { DeadLetterEnvelope, QUEUE_NAMES, type QueueName } from "../contracts/queue";
import { connect, type Sql } from "../db/connect";
import { listDeadLetters, redrive } from "../queue";
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

async function withState<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = connect(requireStateDatabase(config()), { name: "dlq", max: 1 });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function envelopes(sql: Sql, queue: QueueName | undefined): Promise<DeadLetterEnvelope[]> {
  const rows = await listDeadLetters(sql, queue === undefined ? QUEUE_NAMES : [queue]);
  return rows.map((r) =>
    v.parse(DeadLetterEnvelope, {
      id: r.id,
      queue: r.queue,
      payload: r.payload,
      receive_count: r.receive_count,
      last_error: r.last_error,
      created_at: r.created_at.toISOString(),
    }),
  );
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
  async run({ args }) {
    const queue = queueFlag(args.queue);
    const letters = await withState((sql) => envelopes(sql, queue));
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
  async run({ args }) {
    const queue = queueFlag(args.queue);
    const id = idFlag(args.id);
    const moved = await withState(async (sql) => {
      let queues = queue === undefined ? QUEUE_NAMES : [queue];
      if (id !== undefined && queue === undefined) {
        const letter = (await envelopes(sql, undefined)).find((d) => d.id === id);
        if (letter === undefined) throw new Error(`no dead letter with id ${id}`);
        queues = [letter.queue];
      }
      const counts = await Promise.all(queues.map((q) => redrive(sql, q, id)));
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
