import * as v from "valibot";
import { type Config, config, requireStateDatabase } from "../config";
import { QUEUE_NAMES, QUEUES, type QueueName, type QueuePayload } from "../contracts/queue";
import { connect } from "../db/connect";
import { publish } from "../queue";
import { NatsQueue } from "../queue/nats/backend";
import { harnessCommand, UsageError } from "./_command";

/**
 * `harness queue publish QUEUE JSON`: one message, checked against its
 * queue's contract, on the configured backend (pgqueue, or NATS when
 * QUEUE_URL is set). For operators and scripts; publishing the same JSON
 * twice is how a duplicate is injected by hand. Prints the message's id.
 */

function queueArg(value: unknown): QueueName {
  const found = QUEUE_NAMES.find((q) => q === value);
  if (found === undefined) {
    throw new UsageError(`QUEUE must be one of ${QUEUE_NAMES.join(", ")}, got ${String(value)}`);
  }
  return found;
}

function payloadArg<Q extends QueueName>(queue: Q, text: string): QueuePayload<Q> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`JSON is not valid JSON: ${text.slice(0, 200)}`);
  }
  const checked = v.safeParse(QUEUES[queue], json);
  if (!checked.success) {
    throw new UsageError(`JSON breaks the ${queue} contract: ${v.summarize(checked.issues)}`);
  }
  return checked.output;
}

// TODO(merge): once src/queue/open.ts is on main, this is `openQueue(cfg).publisher().publish`.
async function publishOne<Q extends QueueName>(
  cfg: Config,
  queue: Q,
  payload: QueuePayload<Q>,
): Promise<string> {
  if (cfg.queue.url !== undefined) {
    const nats = await NatsQueue.open({
      url: cfg.queue.url,
      namespace: cfg.queue.namespace,
      name: "queue-publish",
    });
    try {
      const [id] = await nats.publisher().publishIds(queue, [{ payload }]);
      if (id === undefined) throw new Error(`publishing to ${queue} returned no id`);
      return id;
    } finally {
      await nats.close();
    }
  }
  const sql = connect(requireStateDatabase(cfg), { name: "queue-publish", max: 1 });
  try {
    return await publish(sql, queue, payload);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const publishCommand = harnessCommand({
  name: "queue publish",
  description:
    "Publish one message, checked against its queue's contract, on the configured backend",
  args: {
    queue: {
      type: "positional",
      required: true,
      description: `the queue (${QUEUE_NAMES.join(", ")})`,
    },
    json: { type: "positional", required: true, description: "the message payload, as JSON" },
  },
  async run({ args }) {
    const queue = queueArg(args.queue);
    const payload = payloadArg(queue, String(args.json));
    const id = await publishOne(config(), queue, payload);
    process.stdout.write(`${id}\n`);
  },
});

export default harnessCommand({
  name: "queue",
  description: "Operate on the queues directly",
  args: {},
  subCommands: { publish: publishCommand },
});
