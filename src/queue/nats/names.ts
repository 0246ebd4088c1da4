import { QUEUE_NAMES, type QueueName } from "../../contracts/queue";

/**
 * Every stream, consumer and subject name of the NATS backend, in one place:
 * the backend, the ensure step and the broker's permission file
 * (deploy/nats/) all follow these. A namespace (QUEUE_NAMESPACE, default
 * `harness`) prefixes each, so deployments and test runs share a server
 * without seeing each other.
 *
 * Per queue Q in namespace N:
 * - stream `N_Q` (work queue): subjects `N.queue.Q.ready` (what receivers
 *   get) and `N.queue.Q.delayed` (published with a future `availableAt`,
 *   moved to ready when due); durable pull consumers `N_Q` and `N_Q_delayed`;
 * - stream `N_Q_errors`: the last recorded error of each live message, on
 *   `N.queue.Q.error.<id>` (one message per subject);
 * - stream `N_Q_dlq`: its dead letters, on `N.queue.Q.dlq.<id>`.
 * A message's id is the stream sequence of its first copy in `N_Q`.
 */

export const DEFAULT_NAMESPACE = "harness";
const NAMESPACE = /^[A-Za-z0-9_-]{1,32}$/;

export interface QueueNames {
  queue: QueueName;
  stream: string;
  consumer: string;
  delayedConsumer: string;
  ready: string;
  delayed: string;
  /** Both subjects of the work stream. */
  subjects: string;
  errorStream: string;
  /** The last-error subject of message `id`. */
  error(id: string): string;
  errorWildcard: string;
  dlqStream: string;
  /** The dead-letter subject of message `id`. */
  dlq(id: string): string;
  dlqWildcard: string;
}

export interface Names {
  namespace: string;
  of<Q extends QueueName>(queue: Q): QueueNames & { queue: Q };
  /** Every stream this namespace owns. */
  streams(): string[];
}

export function namesFor(namespace: string): Names {
  if (!NAMESPACE.test(namespace)) {
    throw new Error(
      `queue namespace ${JSON.stringify(namespace)} must be 1 to 32 letters, digits, - or _`,
    );
  }
  const n = namespace;
  const of = <Q extends QueueName>(queue: Q): QueueNames & { queue: Q } => ({
    queue,
    stream: `${n}_${queue}`,
    consumer: `${n}_${queue}`,
    delayedConsumer: `${n}_${queue}_delayed`,
    ready: `${n}.queue.${queue}.ready`,
    delayed: `${n}.queue.${queue}.delayed`,
    subjects: `${n}.queue.${queue}.*`,
    errorStream: `${n}_${queue}_errors`,
    error: (id) => `${n}.queue.${queue}.error.${id}`,
    errorWildcard: `${n}.queue.${queue}.error.*`,
    dlqStream: `${n}_${queue}_dlq`,
    dlq: (id) => `${n}.queue.${queue}.dlq.${id}`,
    dlqWildcard: `${n}.queue.${queue}.dlq.*`,
  });
  return {
    namespace: n,
    of,
    streams: () => QUEUE_NAMES.flatMap((q) => [of(q).stream, of(q).errorStream, of(q).dlqStream]),
  };
}
