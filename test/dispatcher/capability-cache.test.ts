import { describe, expect, test } from "bun:test";
import { createPrivateKey, randomUUID } from "node:crypto";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { CAPABILITY_TYP } from "../../src/contracts/capability";
import { createVerifier, signCapability } from "../../src/dispatcher/capability";
import { generateSigningJwk, type KeyRing } from "../../src/dispatcher/keys";

/**
 * A token the dispatcher signs is remembered with its claims
 * (src/dispatcher/capability.ts `remember`): it verifies without another
 * signature check, its claims are exactly what the signature carries, and it
 * still expires.
 */

async function ring(): Promise<KeyRing> {
  const jwk = await generateSigningJwk();
  const pub = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, "EdDSA");
  if (pub instanceof Uint8Array) throw new Error("symmetric key");
  return {
    signing: { kid: jwk.kid, signer: createPrivateKey({ key: { ...jwk }, format: "jwk" }) },
    verify: new Map([[jwk.kid, pub]]),
    jwks: [],
    source: "config",
  };
}

const task = () => ({ orgId: "acme", taskId: randomUUID(), attempt: 1 });

describe("remembered capability tokens", () => {
  test("the claims remembered are the ones the signature carries, and verify alike", async () => {
    const r = await ring();
    const { token, claims } = await signCapability(r, { ...task(), ttlMs: 60_000 });
    const key = r.verify.get(r.signing.kid);
    if (key === undefined) throw new Error("no key");
    expect((await jwtVerify(token, key)).payload).toEqual(claims);
    // Signed by hand (no jose on this side): the header is exactly what jose would write.
    expect(decodeProtectedHeader(token)).toEqual({
      alg: "EdDSA",
      typ: CAPABILITY_TYP,
      kid: r.signing.kid,
    });
    const fresh = createVerifier(r, { maxLifetimeMs: 60_000 });
    const remembering = createVerifier(r, { maxLifetimeMs: 60_000 });
    remembering.remember(token, claims);
    expect(await remembering.verify(token)).toEqual({ ok: true, claims });
    expect(await fresh.verify(token)).toEqual({ ok: true, claims });
  });

  test("a remembered token past its expiry is refused", async () => {
    const r = await ring();
    const { token, claims } = await signCapability(r, { ...task(), ttlMs: 60_000 });
    const verifier = createVerifier(r, { maxLifetimeMs: 60_000 });
    verifier.remember(token, { ...claims, exp: claims.iat - 60 });
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "token expired" });
  });
});
