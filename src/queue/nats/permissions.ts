import { QUEUE_NAMES, type QueueName } from "../../contracts/queue";
import type { Names } from "./names";

/**
 * Least privilege on the broker (invariant 9): what each role's NATS user
 * may publish and subscribe to, derived from the same names the backend
 * uses. deploy/nats/harness.conf is this, rendered for the default
 * namespace (a test keeps the two equal). A user reads replies only under
 * its own inbox prefix (`_INBOX_<user>`, see ./connect.ts), never another's.
 */

export const ROLES = ["owner", "dispatcher", "worker", "sink", "reader"] as const;
export type Role = (typeof ROLES)[number];

export interface Permissions {
  publish: string[];
  subscribe: string[];
}

/** The broker user of each role (their passwords come from the environment). */
export const NATS_USERS: Record<Role, string> = {
  owner: "harness_owner",
  dispatcher: "harness_dispatcher",
  worker: "harness_worker",
  sink: "harness_sink",
  reader: "harness_reader",
};

/** Receive, ack, extend, note errors on and dead-letter one queue, and move its delayed messages. */
function consume(names: Names, queue: QueueName): string[] {
  const q = names.of(queue);
  return [
    `$JS.API.STREAM.INFO.${q.stream}`,
    `$JS.API.CONSUMER.INFO.${q.stream}.${q.consumer}`,
    `$JS.API.CONSUMER.INFO.${q.stream}.${q.delayedConsumer}`,
    `$JS.API.CONSUMER.MSG.NEXT.${q.stream}.${q.consumer}`,
    `$JS.API.CONSUMER.MSG.NEXT.${q.stream}.${q.delayedConsumer}`,
    `$JS.ACK.${q.stream}.${q.consumer}.>`,
    `$JS.ACK.${q.stream}.${q.delayedConsumer}.>`,
    `$JS.API.STREAM.MSG.GET.${q.stream}`,
    `$JS.API.STREAM.MSG.DELETE.${q.stream}`,
    q.ready,
    q.dlqWildcard,
    q.errorWildcard,
    `$JS.API.STREAM.MSG.GET.${q.errorStream}`,
    `$JS.API.STREAM.PURGE.${q.errorStream}`,
  ];
}

const inbox = (role: Role) => `_INBOX_${NATS_USERS[role]}.>`;

export function rolePermissions(names: Names): Record<Role, Permissions> {
  const all = QUEUE_NAMES.map((queue) => names.of(queue));
  return {
    owner: { publish: [">"], subscribe: [">"] },
    dispatcher: {
      publish: all.flatMap((q) => [q.ready, q.delayed]),
      subscribe: [inbox("dispatcher")],
    },
    worker: {
      publish: consume(names, "task_wakeup"),
      subscribe: [inbox("worker"), names.of("task_wakeup").ready],
    },
    sink: {
      publish: consume(names, "buffer_queue"),
      subscribe: [inbox("sink"), names.of("buffer_queue").ready],
    },
    reader: {
      publish: all.flatMap((q) => [
        `$JS.API.STREAM.INFO.${q.stream}`,
        `$JS.API.CONSUMER.INFO.${q.stream}.${q.consumer}`,
        `$JS.API.STREAM.INFO.${q.dlqStream}`,
        `$JS.API.STREAM.MSG.GET.${q.dlqStream}`,
        // Redrive (`harness dlq redrive`): back to ready, then off the dead letters.
        q.ready,
        `$JS.API.STREAM.MSG.DELETE.${q.dlqStream}`,
      ]),
      subscribe: [inbox("reader")],
    },
  };
}

const list = (subjects: string[], indent: string) =>
  ["[", ...subjects.map((s) => `${indent}  "${s}"`), `${indent}]`].join("\n");

/**
 * The accounts part of a nats-server config (deploy/nats/accounts.conf,
 * included by harness.conf): one account with JetStream, one user per role,
 * passwords from the environment.
 */
export function renderAccounts(names: Names): string {
  const perms = rolePermissions(names);
  const users = ROLES.map((role) => {
    const p = perms[role];
    const env = `$HARNESS_NATS_${role.toUpperCase()}_PASSWORD`;
    return [
      `      {`,
      `        user: ${NATS_USERS[role]}, password: ${env}`,
      `        permissions: {`,
      `          publish: { allow: ${list(p.publish, "          ")} }`,
      `          subscribe: { allow: ${list(p.subscribe, "          ")} }`,
      `        }`,
      `      }`,
    ].join("\n");
  });
  return [
    `# Generated from src/queue/nats/permissions.ts for QUEUE_NAMESPACE=${names.namespace}; do not edit by hand.`,
    '# Each role\'s broker user may touch only its own queue (see the README, "Queues on NATS").',
    "# Passwords come from the environment: HARNESS_NATS_<ROLE>_PASSWORD.",
    "accounts {",
    "  HARNESS {",
    "    jetstream: enabled",
    "    users: [",
    users.join("\n"),
    "    ]",
    "  }",
    "}",
    "",
  ].join("\n");
}
