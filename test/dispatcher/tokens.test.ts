import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { importJWK, SignJWT } from "jose";
import * as v from "valibot";
import {
  CAPABILITY_AUDIENCE,
  CAPABILITY_ISSUER,
  CAPABILITY_TYP,
  SCOPES,
} from "../../src/contracts/capability";
import { ErrorBody } from "../../src/contracts/http";
import { generateSigningJwk } from "../../src/dispatcher/keys";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, TEST_OBJECT_STORE_URL, type TestDispatcher } from "../support/dispatcher";
import { type Claimed, call, claim, fence, footprint, newTask } from "./_client";

// Invariant 3: every forged, stale or misused capability token is refused and changes nothing.
const db = useFreshDatabase();
let d: TestDispatcher;
let signing: Awaited<ReturnType<typeof generateSigningJwk>>;
let other: Awaited<ReturnType<typeof generateSigningJwk>>;

beforeAll(async () => {
  signing = await generateSigningJwk();
  other = await generateSigningJwk();
  d = await startDispatcher({
    databaseUrl: db().url,
    env: { CAPABILITY_SIGNING_KEY: JSON.stringify(signing) },
  });
});
afterAll(async () => {
  expect(await d?.stop()).toBe(0);
});

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function claimsFor(c: Claimed, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: CAPABILITY_ISSUER,
    aud: CAPABILITY_AUDIENCE,
    sub: `task/${c.task_id}/attempt/${c.attempt}`,
    iat: now(),
    nbf: now(),
    exp: now() + 600,
    jti: randomUUID(),
    org_id: c.org_id,
    task_id: c.task_id,
    attempt: c.attempt,
    scope: Object.values(SCOPES).join(" "),
    ...over,
  };
}

async function forge(
  payload: Record<string, unknown>,
  opts: { jwk?: typeof signing; kid?: string; typ?: string } = {},
): Promise<string> {
  const jwk = opts.jwk ?? signing;
  const key = await importJWK(jwk, "EdDSA");
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "EdDSA", typ: opts.typ ?? CAPABILITY_TYP, kid: opts.kid ?? jwk.kid })
    .sign(key);
}

describe("capability tokens", () => {
  test("a token the test forges with the configured key is accepted (the forging is sound)", async () => {
    const c = await claim(d, await newTask(db().sql));
    expect((await call(d, "heartbeat", await forge(claimsFor(c)), fence(c))).status).toBe(200);
  });

  test("each attack is refused with 401 or 403 and changes nothing", async () => {
    const c = await claim(d, await newTask(db().sql));
    const b = await claim(d, await newTask(db().sql));
    const [, payload, signature] = c.capability_token.split(".");
    const header = { alg: "EdDSA", typ: CAPABILITY_TYP, kid: signing.kid };
    const publicJwk = { kty: signing.kty, crv: signing.crv, x: signing.x };
    const hs256 = await new SignJWT(claimsFor(c))
      .setProtectedHeader({ alg: "HS256", typ: CAPABILITY_TYP, kid: signing.kid })
      .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    const tampered = `${b64(header)}.${b64({ ...claimsFor(c), org_id: "evil" })}.${signature}`;
    const attacks: Array<[string, string | undefined, number]> = [
      ["no header", undefined, 401],
      ["garbage", "not.a.token", 401],
      [
        "alg none",
        `${b64({ alg: "none", typ: CAPABILITY_TYP, kid: signing.kid })}.${payload}.`,
        401,
      ],
      ["HS256 keyed with the public key", hs256, 401],
      ["tampered payload", tampered, 401],
      ["unknown kid", await forge(claimsFor(c), { kid: "no-such-key" }), 401],
      ["wrong iss", await forge(claimsFor(c, { iss: "someone-else" })), 401],
      ["wrong aud", await forge(claimsFor(c, { aud: "another-api" })), 401],
      [
        "expired",
        await forge(claimsFor(c, { iat: now() - 600, nbf: now() - 600, exp: now() - 60 })),
        401,
      ],
      ["not yet valid", await forge(claimsFor(c, { nbf: now() + 60 })), 401],
      ["missing jti", await forge(claimsFor(c, { jti: undefined })), 401],
      ["unknown claim", await forge(claimsFor(c, { admin: true })), 401],
      ["wrong typ", await forge(claimsFor(c), { typ: "JWT" }), 401],
      [
        "a different key with our kid",
        await forge(claimsFor(c), { jwk: { ...other, kid: signing.kid } }),
        401,
      ],
      ["a different key", await forge(claimsFor(c), { jwk: other }), 401],
      ["task B's token on task A", b.capability_token, 403],
      [
        "a token without the heartbeat scope",
        await forge(claimsFor(c, { scope: SCOPES.complete })),
        403,
      ],
    ];
    const before = await footprint(db().sql, c.task_id);
    for (const [what, token, status] of attacks) {
      const res = await call(d, "heartbeat", token, fence(c));
      expect(res.status, what).toBe(status);
      expect(v.is(ErrorBody, await res.json()), what).toBe(true);
    }
    const noScope = await forge(claimsFor(c, { scope: SCOPES.heartbeat }));
    expect((await call(d, "complete", noScope, fence(c))).status).toBe(403);
    const publishOnly = await forge(claimsFor(c, { scope: SCOPES.bufferPublish }));
    expect((await call(d, "complete", publishOnly, fence(c))).status).toBe(403);
    expect(await footprint(db().sql, c.task_id)).toEqual(before);
  });

  test("a token issued in the future, or for longer than the configured lifetime → 401, nothing changed", async () => {
    const c = await claim(d, await newTask(db().sql));
    // The default lifetime: one hour plus the default 30 s lease.
    const lifetime = 3_630;
    const t = now();
    const refused: Array<[string, Record<string, unknown>, RegExp]> = [
      ["iat a day ahead", { iat: t + 86_400, nbf: t, exp: t + 600 }, /iat/],
      ["iat past the leeway", { iat: t + 60, nbf: t, exp: t + 600 }, /iat/],
      ["exp 100 years out", { iat: t, exp: t + 100 * 365 * 86_400 }, /lifetime/],
      ["one second longer than issued", { iat: t, exp: t + lifetime + 1 }, /lifetime/],
    ];
    const before = await footprint(db().sql, c.task_id);
    for (const [what, over, why] of refused) {
      const res = await call(d, "heartbeat", await forge(claimsFor(c, over)), fence(c));
      const body = v.parse(ErrorBody, await res.json());
      expect({ what, status: res.status, error: body.error }).toEqual({
        what,
        status: 401,
        error: "invalid_capability",
      });
      expect(body.message).toMatch(why);
    }
    expect(await footprint(db().sql, c.task_id)).toEqual(before);
    // At the limits: iat within the leeway, and exactly the configured lifetime.
    // Every iat is t's: claimsFor's own now() may be a second later on a slow run.
    for (const over of [{ iat: t + 3 }, { iat: t, exp: t + lifetime }]) {
      expect((await call(d, "heartbeat", await forge(claimsFor(c, over)), fence(c))).status).toBe(
        200,
      );
    }
    // The dispatcher's own tokens live exactly that long.
    const [, payload] = c.capability_token.split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString());
    expect(claims.exp - claims.iat).toBe(lifetime);
  });

  test("a token for attempt 1 used with attempt 2's body → 403", async () => {
    const id = await newTask(db().sql);
    const first = await claim(d, id);
    await db()
      .sql`UPDATE state.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = ${id}`;
    const second = await claim(d, id);
    expect(second.attempt).toBe(2);
    const before = await footprint(db().sql, id);
    for (const endpoint of ["heartbeat", "complete"] as const) {
      const res = await call(d, endpoint, first.capability_token, fence(second));
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: "capability_mismatch" });
    }
    expect(await footprint(db().sql, id)).toEqual(before);
  });

  test("a validly signed token for another org than the task's → 403 on every endpoint, nothing changed", async () => {
    const c = await claim(d, await newTask(db().sql));
    const otherOrg = await forge(claimsFor(c, { org_id: "someone-else" }));
    const before = await footprint(db().sql, c.task_id);
    const batch = {
      ...fence(c),
      batch_uri: `${TEST_OBJECT_STORE_URL}/${c.org_id}/${c.task_id}/1-x.jsonl`,
      content_type: "application/x-ndjson",
      batch_size_bytes: 10,
    };
    for (const [endpoint, body] of [
      ["heartbeat", fence(c)],
      ["buffer-publish", batch],
      ["complete", fence(c)],
    ] as const) {
      const res = await call(d, endpoint, otherOrg, body);
      expect({ endpoint, status: res.status }).toEqual({ endpoint, status: 403 });
      expect(await res.json()).toMatchObject({ error: "capability_mismatch" });
    }
    expect(await footprint(db().sql, c.task_id)).toEqual(before);
    // The same claims for the task's own org are accepted: the org alone made the difference.
    expect((await call(d, "heartbeat", await forge(claimsFor(c)), fence(c))).status).toBe(200);
  });
});
