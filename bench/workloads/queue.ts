import type { Workload } from "./types";

/**
 * Workloads 1 and 2: publish N messages, then receive + ack them all with 10
 * concurrent consumers and a no-op handler. Only the receive + ack part is timed.
 * The `nats` reference is the same loop on the NATS backend (BENCH_NATS_URL,
 * default the local nats-server), shown for scale: the queues' other backend.
 */

const CONCURRENCY = 10;
const COUNT = 20_000;
const QUICK_COUNT = 1_000;

const single = { batch: 1, concurrency: CONCURRENCY };
const batched = { batch: 100, concurrency: CONCURRENCY };

const nats = (options: Record<string, number>, how: string) => ({
  id: "nats",
  label: `harness on NATS JetStream (${how})`,
  script: "subjects/queue-nats.ts",
  database: "empty" as const,
  options,
  target: 0,
});

export const queueSingle: Workload = {
  id: "queue-single",
  group: "queue",
  title: `queue, 1 message per receive, ${CONCURRENCY} consumers`,
  unit: "msgs/s",
  count: COUNT,
  quickCount: QUICK_COUNT,
  ours: {
    id: "ours",
    label: "harness pgqueue (receive max 1 + ack)",
    script: "subjects/queue-ours.ts",
    database: "state",
    options: single,
  },
  references: [
    {
      id: "graphile",
      label: "graphile-worker (concurrency 10, default mode)",
      script: "subjects/queue-graphile.ts",
      database: "empty",
      options: { ...single, batched: 0 },
      target: 1.5,
    },
    {
      id: "pgboss",
      label: "pg-boss (batchSize 1, 10 workers)",
      script: "subjects/queue-pgboss.ts",
      database: "empty",
      options: single,
      target: 2,
    },
    nats(single, "receive max 1 + ack"),
  ],
};

export const queueBatched: Workload = {
  id: "queue-batched",
  group: "queue",
  title: `queue, batches of 100, ${CONCURRENCY} consumers`,
  unit: "msgs/s",
  count: COUNT,
  quickCount: QUICK_COUNT,
  ours: {
    id: "ours",
    label: "harness pgqueue (receive max 100 + ackBatch)",
    script: "subjects/queue-ours.ts",
    database: "state",
    options: batched,
  },
  references: [
    {
      id: "graphile",
      label: "graphile-worker (localQueue 100, completeJobBatchDelay 0)",
      script: "subjects/queue-graphile.ts",
      database: "empty",
      options: { ...batched, batched: 1 },
      target: 1,
    },
    {
      id: "pgboss",
      label: "pg-boss (batchSize 100, 10 workers)",
      script: "subjects/queue-pgboss.ts",
      database: "empty",
      options: batched,
      target: 2,
    },
    {
      id: "raw",
      label: "raw SQL ceiling (same receive + ack statements, postgres.js, 10 tight loops of 100)",
      script: "subjects/queue-raw.ts",
      database: "state",
      options: batched,
      target: 0.7,
    },
    nats(batched, "receive max 100 + ackBatch"),
  ],
};
