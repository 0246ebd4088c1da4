import * as v from "valibot";
import { AlertLine } from "./alert";
import { CAPABILITY_HEADER, CapabilityClaims, CapabilityHeader } from "./capability";
import { NDJSON } from "./common";
import {
  BacklogResponse,
  BufferPublishRequest,
  BufferPublishResponse,
  ClaimRequest,
  ClaimResponse,
  CompleteRequest,
  CompleteResponse,
  ErrorBody,
  FailRequest,
  FailResponse,
  HeartbeatRequest,
  HeartbeatResponse,
} from "./http";
import { BufferMessage, DeadLetterEnvelope, TaskCompleted, TaskWakeup } from "./queue";
import { SyntheticPayload, TaskPayload } from "./task";

/**
 * Every contract that crosses a process boundary: its name, its version and
 * the valibot schema it is exported from, plus where it travels. The frozen
 * JSON Schema copies in `contracts/` are generated from this list by
 * `harness contracts export`; changing a contract on purpose means bumping
 * its version here and adding a line to `contracts/CHANGELOG.md`.
 */

/** Where a contract travels; the conformance checker matches live traffic by this. */
export const Carrier = v.variant("kind", [
  v.strictObject({
    kind: v.literal("http-request"),
    method: v.picklist(["GET", "POST"]),
    path: v.pipe(v.string(), v.startsWith("/")),
  }),
  v.strictObject({
    kind: v.literal("http-response"),
    method: v.picklist(["GET", "POST"]),
    path: v.pipe(v.string(), v.startsWith("/")),
    status: v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(100))), v.minLength(1)),
  }),
  v.strictObject({ kind: v.literal("queue-message"), queue: v.string() }),
  v.strictObject({ kind: v.literal("jws-protected-header"), token: v.string() }),
  v.strictObject({ kind: v.literal("jwt-claims"), token: v.string() }),
  v.strictObject({ kind: v.literal("jsonl-line"), content_type: v.string() }),
  v.strictObject({ kind: v.literal("stored-json"), where: v.string() }),
  v.strictObject({ kind: v.literal("cli-json"), command: v.string() }),
]);
export type Carrier = v.InferOutput<typeof Carrier>;

export interface ContractEntry {
  /** snake_case, stable: the file is `<name>.schema.json`. */
  name: string;
  /** Bumped on every deliberate change, with a line in contracts/CHANGELOG.md. */
  version: number;
  description: string;
  schema: v.GenericSchema;
  carriers: Carrier[];
}

const CLAIM = "/internal/task-claim";
const HEARTBEAT = "/v1/task/heartbeat";
const BUFFER_PUBLISH = "/v1/task/buffer-publish";
const COMPLETE = "/v1/task/complete";
const FAIL = "/v1/task/fail";
const BACKLOG = "/internal/backlog";

/** Refusal statuses per endpoint, as the HTTP table of DESIGN.md names them (400/413 for bad bodies). */
const REFUSALS: Array<{ method: "GET" | "POST"; path: string; status: number[] }> = [
  { method: "POST", path: CLAIM, status: [400, 401, 404, 409, 413] },
  { method: "POST", path: HEARTBEAT, status: [400, 401, 403, 409, 413] },
  { method: "POST", path: BUFFER_PUBLISH, status: [400, 401, 403, 409, 413, 422] },
  { method: "POST", path: COMPLETE, status: [400, 401, 403, 409, 413, 422] },
  { method: "POST", path: FAIL, status: [400, 401, 403, 409, 413] },
  { method: "GET", path: BACKLOG, status: [401] },
];

const request = (path: string): Carrier => ({ kind: "http-request", method: "POST", path });
const response = (path: string, status: number): Carrier => ({
  kind: "http-response",
  method: "POST",
  path,
  status: [status],
});

export const CONTRACTS: readonly ContractEntry[] = [
  {
    name: "claim_request",
    version: 1,
    description: "Body of POST /internal/task-claim (worker → dispatcher).",
    schema: ClaimRequest,
    carriers: [request(CLAIM)],
  },
  {
    name: "claim_response",
    version: 3,
    description:
      "200 body of POST /internal/task-claim: the new attempt, its lease and capability.",
    schema: ClaimResponse,
    carriers: [response(CLAIM, 200)],
  },
  {
    name: "heartbeat_request",
    version: 1,
    description: "Body of POST /v1/task/heartbeat: the fence of the current attempt.",
    schema: HeartbeatRequest,
    carriers: [request(HEARTBEAT)],
  },
  {
    name: "heartbeat_response",
    version: 2,
    description: "200 body of POST /v1/task/heartbeat: the renewed lease expiry.",
    schema: HeartbeatResponse,
    carriers: [response(HEARTBEAT, 200)],
  },
  {
    name: "buffer_publish_request",
    version: 1,
    description: "Body of POST /v1/task/buffer-publish: a written batch to hand to the sink.",
    schema: BufferPublishRequest,
    carriers: [request(BUFFER_PUBLISH)],
  },
  {
    name: "buffer_publish_response",
    version: 1,
    description: "202 body of POST /v1/task/buffer-publish.",
    schema: BufferPublishResponse,
    carriers: [response(BUFFER_PUBLISH, 202)],
  },
  {
    name: "complete_request",
    version: 2,
    description:
      "Body of POST /v1/task/complete: the fence of the current attempt and, optionally, its one batch to publish in the same statement.",
    schema: CompleteRequest,
    carriers: [request(COMPLETE)],
  },
  {
    name: "complete_response",
    version: 1,
    description: "200 body of POST /v1/task/complete (idempotent for the current attempt).",
    schema: CompleteResponse,
    carriers: [response(COMPLETE, 200)],
  },
  {
    name: "fail_request",
    version: 1,
    description:
      "Body of POST /v1/task/fail: the fence, why the attempt failed, and whether to retry.",
    schema: FailRequest,
    carriers: [request(FAIL)],
  },
  {
    name: "fail_response",
    version: 1,
    description:
      "200 body of POST /v1/task/fail: queued again with when its wakeup is due, or failed.",
    schema: FailResponse,
    carriers: [response(FAIL, 200)],
  },
  {
    name: "backlog_response",
    version: 1,
    description:
      "200 body of GET /internal/backlog: outbox rows not yet published, tasks queued and running.",
    schema: BacklogResponse,
    carriers: [{ kind: "http-response", method: "GET", path: BACKLOG, status: [200] }],
  },
  {
    name: "error_body",
    version: 3,
    description: "Body of every refusal of the dispatcher's task API.",
    schema: ErrorBody,
    carriers: REFUSALS.map((r) => ({ kind: "http-response", ...r })),
  },
  {
    name: "capability_header",
    version: 1,
    description: `Protected header of the capability token (${CAPABILITY_HEADER}).`,
    schema: CapabilityHeader,
    carriers: [{ kind: "jws-protected-header", token: CAPABILITY_HEADER }],
  },
  {
    name: "capability_claims",
    version: 1,
    description: "Claims of the capability token, bound to {org_id, task_id, attempt} with scopes.",
    schema: CapabilityClaims,
    carriers: [{ kind: "jwt-claims", token: CAPABILITY_HEADER }],
  },
  {
    name: "task_wakeup",
    version: 1,
    description: "Message on queue task_wakeup: a task may need work (duplicates are harmless).",
    schema: TaskWakeup,
    carriers: [{ kind: "queue-message", queue: "task_wakeup" }],
  },
  {
    name: "buffer_queue",
    version: 1,
    description:
      "Message on queue buffer_queue: a batch to ingest, org and task from the task row.",
    schema: BufferMessage,
    carriers: [{ kind: "queue-message", queue: "buffer_queue" }],
  },
  {
    name: "task_completed",
    version: 2,
    description: "Message on queue task_completed: downstream routing once a task succeeded.",
    schema: TaskCompleted,
    carriers: [{ kind: "queue-message", queue: "task_completed" }],
  },
  {
    name: "dead_letter_envelope",
    version: 2,
    description: "One dead letter as `harness dlq list --json` shows it.",
    schema: DeadLetterEnvelope,
    carriers: [{ kind: "cli-json", command: "harness dlq list --json" }],
  },
  {
    name: "task_payload",
    version: 3,
    description:
      "A task's payload: any JSON object of at most 64 KiB (a task program reads it on stdin).",
    schema: TaskPayload,
    carriers: [
      { kind: "stored-json", where: "state.tasks.payload" },
      { kind: "stored-json", where: "harness task create --payload" },
    ],
  },
  {
    name: "synthetic_payload",
    version: 2,
    description:
      "The payload the default worker (no --exec) works: {alerts: N, work_ms?} or {alerts: [explicit alerts], work_ms?}.",
    schema: SyntheticPayload,
    carriers: [
      { kind: "stored-json", where: "state.tasks.payload of a task for the default worker" },
    ],
  },
  {
    name: "alert_line",
    version: 3,
    description:
      "One line of a batch (JSONL), at most 1 MiB with its newline; any line that fails makes the whole batch poison. dedupe_key is unique within the task's org.",
    schema: AlertLine,
    carriers: [{ kind: "jsonl-line", content_type: NDJSON }],
  },
];

/** One entry of `contracts/index.json`. */
export const ContractIndexEntry = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]*$/)),
  version: v.pipe(v.number(), v.integer(), v.minValue(1)),
  file: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_]*\.schema\.json$/)),
  fingerprint: v.pipe(v.string(), v.regex(/^sha256:[0-9a-f]{16}$/)),
  description: v.string(),
  carriers: v.array(Carrier),
});
export type ContractIndexEntry = v.InferOutput<typeof ContractIndexEntry>;

/** `contracts/index.json`. */
export const ContractIndex = v.strictObject({
  format: v.literal("harness-contracts/1"),
  json_schema_dialect: v.literal("https://json-schema.org/draft/2020-12/schema"),
  contracts: v.array(ContractIndexEntry),
});
export type ContractIndex = v.InferOutput<typeof ContractIndex>;

export function contractByName(name: string): ContractEntry | undefined {
  return CONTRACTS.find((c) => c.name === name);
}
