import * as v from "valibot";
import { config } from "../config";
import { QUEUE_NAMES, QUEUES, type QueueName, type QueuePayload } from "../contracts/queue";
import { openQueue } from "../queue/open";
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
    const backend = await openQueue(config(), { name: "queue-publish", connections: 1 });
    try {
      const [id] = await backend.publisher().publish(queue, [{ payload }]);
      process.stdout.write(`${id}\n`);
    } finally {
      await backend.close();
    }
  },
});

export default harnessCommand({
  name: "queue",
  description: "Operate on the queues directly",
  args: {},
  subCommands: { publish: publishCommand },
});
