import { afterAll, expect } from "bun:test";
import { createPrivateKey } from "node:crypto";
import * as v from "valibot";
import { connect, type Sql } from "../../src/db/connect";
import { issueCapability } from "../../src/dispatcher/capability";
import { generateSigningJwk, type KeyRing } from "../../src/dispatcher/keys";
import { generatedAlert, toJsonl } from "../../src/worker/alerts";
import { batchOf, type Claimed, call, claim, drained, fence, Jwks } from "../dispatcher/_client";
import type { TestDispatcher } from "../support/dispatcher";
import { waitFor } from "../support/wait";
import type { SecurePlatform } from "./platform";

/** The honest side of the security scenarios, and the attacker's tools. */

/** Connections opened lazily and closed when the test file ends. */
export function connections(): (url: string) => Sql {
  const open = new Map<string, Sql>();
  afterAll(async () => {
    await Promise.all([...open.values()].map((s) => s.end({ timeout: 1 })));
  });
  return (url) => {
    let sql = open.get(url);
    if (sql === undefined) {
      sql = connect(url, { name: "attacker", max: 1 });
      open.set(url, sql);
    }
    return sql;
  };
}

/**
 * One honest attempt, as `harness worker` makes it: claim, write the batch,
 * buffer-publish, complete. Returns the claim and how many alerts it wrote.
 */
export async function honestAttempt(
  p: SecurePlatform,
  taskId: string,
  alerts = 3,
): Promise<{ claimed: Claimed; alerts: number }> {
  const claimed = await claim(p.dispatcher, taskId);
  const lines = Array.from({ length: alerts }, (_, i) =>
    generatedAlert(claimed.org_id, claimed.task_id, i),
  );
  const key = `${claimed.org_id}/${claimed.task_id}/${claimed.attempt}-honest.jsonl`;
  const put = await p.store.store.put(key, toJsonl(lines), {
    contentType: "application/x-ndjson",
  });
  const body = { ...batchOf(claimed, p.store.url, `${claimed.attempt}-honest.jsonl`) };
  body.batch_size_bytes = put.size;
  const published = await call(p.dispatcher, "buffer-publish", claimed.capability_token, body);
  expect(published.status).toBe(202);
  const completed = await call(p.dispatcher, "complete", claimed.capability_token, fence(claimed));
  expect(completed.status).toBe(200);
  await drained(p.state.sql);
  return { claimed, alerts };
}

/** The id of the task's buffer_queue message, once the drainer published it. */
export async function bufferMessageOf(sql: Sql, taskId: string): Promise<string> {
  return waitFor(
    async () => {
      const [row] = await sql`
        SELECT id::text AS id FROM state.queue_messages
        WHERE queue_name = 'buffer_queue' AND payload->>'task_id' = ${taskId}`;
      return row === undefined ? undefined : String(row.id);
    },
    { what: `the buffer message of ${taskId}`, timeoutMs: 10_000 },
  );
}

/** A message as the owner sees it: what an attack must leave exactly as it was. */
export async function messageRow(sql: Sql, id: string) {
  const [row] = await sql`
    SELECT id::text AS id, queue_name, payload, receive_count, last_error, available_at::text AS available_at
    FROM state.queue_messages WHERE id = ${id}::bigint`;
  return row === undefined ? undefined : { ...row };
}

/**
 * A capability token the attacker signs itself: with a key of its own, the
 * dispatcher's real `kid` (public, from /.well-known/jwks.json), every claim
 * right, and a lifetime of its choosing.
 */
export async function mintedToken(
  d: TestDispatcher,
  c: { orgId: string; taskId: string; attempt: number; ttlMs: number },
): Promise<string> {
  const jwks = v.parse(Jwks, await (await fetch(`${d.url}/.well-known/jwks.json`)).json());
  const kid = jwks.keys[0]?.kid ?? "unknown";
  const own = await generateSigningJwk();
  const signer = createPrivateKey({ key: { ...own }, format: "jwk" });
  const ring: KeyRing = {
    signing: { kid, signer },
    verify: new Map(),
    jwks: [],
    source: "config",
  };
  return issueCapability(ring, c);
}
