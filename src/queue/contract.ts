import * as v from "valibot";
import { QUEUES, type QueueName, type QueuePayload } from "../contracts/queue";
import { MessageRefusedError } from "./seam";

/**
 * The contract check every backend applies: on publish a payload that breaks
 * its queue's contract is refused; on receive it is dead-lettered with the
 * reason `incoming` gives, never delivered.
 */

export function checkOutgoing<Q extends QueueName>(queue: Q, payload: unknown): QueuePayload<Q> {
  const result = v.safeParse(QUEUES[queue], payload);
  if (!result.success) {
    throw new MessageRefusedError(
      `payload for queue ${queue} breaks its contract: ${v.summarize(result.issues)}`,
    );
  }
  return result.output;
}

export type Incoming<Q extends QueueName> =
  | { ok: true; payload: QueuePayload<Q> }
  | { ok: false; reason: string };

export function checkIncoming<Q extends QueueName>(queue: Q, payload: unknown): Incoming<Q> {
  const result = v.safeParse(QUEUES[queue], payload);
  if (result.success) return { ok: true, payload: result.output };
  return {
    ok: false,
    reason: `payload breaks the ${queue} contract: ${v.summarize(result.issues)}`,
  };
}
