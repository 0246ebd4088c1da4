import { afterAll, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { generateSigningJwk } from "../../src/dispatcher/keys";
import { useFreshDatabase } from "../support/db";
import { startDispatcher, type TestDispatcher } from "../support/dispatcher";
import { call, claim, fence, Jwks, newTask } from "./_client";

// Where signing keys come from, and that issued tokens survive restarts and rotation.
const db = useFreshDatabase();
const started: TestDispatcher[] = [];
afterAll(async () => {
  for (const d of started) await d.stop();
});
async function start(env: Record<string, string> = {}) {
  const d = await startDispatcher({ databaseUrl: db().url, env });
  started.push(d);
  return d;
}

describe("signing keys", () => {
  test("without a configured key, a restarted and a second dispatcher accept tokens already issued", async () => {
    const first = await start();
    const c = await claim(first, await newTask(db().sql));
    expect(await first.stop()).toBe(0);
    const [second, third] = await Promise.all([start(), start()]);
    expect((await call(second, "heartbeat", c.capability_token, fence(c))).status).toBe(200);
    expect((await call(third, "heartbeat", c.capability_token, fence(c))).status).toBe(200);
    const keys = await db().sql`SELECT kid FROM state.signing_keys`;
    expect(keys).toHaveLength(1);
    const jwks = v.parse(Jwks, await (await fetch(`${third.url}/.well-known/jwks.json`)).json());
    expect(jwks.keys.map((k) => k.kid)).toEqual([keys[0]?.kid]);
  }, 60_000);

  test("rotation: tokens of the old key verify through CAPABILITY_VERIFY_KEYS; without it they are refused", async () => {
    const oldKey = await generateSigningJwk();
    const newKey = await generateSigningJwk();
    const before = await start({ CAPABILITY_SIGNING_KEY: JSON.stringify(oldKey) });
    const c = await claim(before, await newTask(db().sql));
    const oldPublic = { kty: oldKey.kty, crv: oldKey.crv, x: oldKey.x, kid: oldKey.kid };
    const rotated = await start({
      CAPABILITY_SIGNING_KEY: JSON.stringify(newKey),
      CAPABILITY_VERIFY_KEYS: JSON.stringify([oldPublic]),
    });
    expect((await call(rotated, "heartbeat", c.capability_token, fence(c))).status).toBe(200);
    const jwks = v.parse(Jwks, await (await fetch(`${rotated.url}/.well-known/jwks.json`)).json());
    expect(jwks.keys.map((k) => k.kid)).toEqual([newKey.kid, oldKey.kid]);
    const strict = await start({ CAPABILITY_SIGNING_KEY: JSON.stringify(newKey) });
    expect((await call(strict, "heartbeat", c.capability_token, fence(c))).status).toBe(401);
  }, 60_000);

  test("the dispatcher refuses to start without INTERNAL_AUTH_TOKEN, or with a bad signing key", async () => {
    const { runHarness } = await import("../support/processes");
    const base = { DATABASE_URL: db().url, OBJECT_STORE_URL: "file:///tmp/x", PORT: "1" };
    const noToken = await runHarness(["dispatcher"], base);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("INTERNAL_AUTH_TOKEN");
    const badKey = await runHarness(["dispatcher"], {
      ...base,
      INTERNAL_AUTH_TOKEN: "0123456789abcdef-token",
      CAPABILITY_SIGNING_KEY: '{"kty":"RSA"}',
    });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain("Ed25519");
  }, 30_000);
});
