import { createPrivateKey, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from "jose";
import * as v from "valibot";
import type { Config } from "../config";
import { ConfigError } from "../config";
import type { Sql } from "../db/connect";
import { ruleOnly } from "../issue-text";
import { signingKeyInsertFirst, signingKeyList } from "./sql/keys";

/**
 * Capability signing keys (Ed25519 JWKs). Where the signing key comes from,
 * first match wins:
 *   1. CAPABILITY_SIGNING_KEY — a private JWK (see `harness keygen`);
 *   2. CAPABILITY_KEY_FILE — a file holding one, created on first start;
 *   3. the state database (`state.signing_keys`): the first dispatcher
 *      generates one and every later or concurrent dispatcher uses it.
 * Tokens verify against the signing key, CAPABILITY_VERIFY_KEYS (public JWKs,
 * for rotation) and, in database mode, every stored key.
 */

const Ed25519Jwk = v.object({
  kty: v.literal("OKP"),
  crv: v.literal("Ed25519"),
  x: v.pipe(v.string(), v.minLength(1)),
  d: v.optional(v.pipe(v.string(), v.minLength(1))),
  kid: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
});
type Ed25519Jwk = v.InferOutput<typeof Ed25519Jwk>;

export interface PublicJwk {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

export interface KeyRing {
  /** The private key, for node:crypto's synchronous sign (./capability.ts). */
  signing: { kid: string; signer: KeyObject };
  verify: Map<string, CryptoKey>;
  /** What `/.well-known/jwks.json` serves. */
  jwks: PublicJwk[];
  source: "config" | "file" | "database";
}

export const ALG = "EdDSA";

/** A new private signing JWK with its thumbprint as `kid`. */
export async function generateSigningJwk(): Promise<
  Ed25519Jwk & { kid: string; alg: string; use: string }
> {
  const { privateKey } = await generateKeyPair(ALG, { crv: "Ed25519", extractable: true });
  const jwk = v.parse(Ed25519Jwk, await exportJWK(privateKey));
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
  return { ...jwk, kid, alg: ALG, use: "sig" };
}

function parseJwk(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${what} is not JSON`);
  }
}

function checkJwk(value: unknown, what: string): Ed25519Jwk {
  // ruleOnly: a key's fields are secret, so the message never repeats a value.
  const r = v.safeParse(Ed25519Jwk, value, { message: ruleOnly, abortEarly: true });
  if (!r.success) {
    const issue = r.issues[0];
    throw new ConfigError(
      `${what} is not an Ed25519 JWK: ${v.getDotPath(issue)}: ${issue.message}`,
    );
  }
  return r.output;
}

async function withKid(jwk: Ed25519Jwk): Promise<Ed25519Jwk & { kid: string }> {
  const kid = jwk.kid ?? (await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }));
  return { ...jwk, kid };
}

async function importKey(jwk: JWK, what: string): Promise<CryptoKey> {
  const key = await importJWK(jwk, ALG);
  if (key instanceof Uint8Array) throw new ConfigError(`${what} is not an asymmetric key`);
  return key;
}

function signerOf(jwk: Ed25519Jwk): KeyObject {
  try {
    return createPrivateKey({ key: { ...jwk }, format: "jwk" });
  } catch (cause) {
    throw new ConfigError("the signing key is not a usable Ed25519 private key", { cause });
  }
}

const publicOf = (jwk: Ed25519Jwk & { kid: string }): PublicJwk => ({
  kty: "OKP",
  crv: "Ed25519",
  x: jwk.x,
  kid: jwk.kid,
  alg: ALG,
  use: "sig",
});

function keyFromFile(path: string, generated: unknown): unknown {
  if (!existsSync(path)) {
    try {
      writeFileSync(path, `${JSON.stringify(generated)}\n`, { mode: 0o600, flag: "wx" });
      return generated;
    } catch (err) {
      // Another dispatcher created it first: use theirs.
      if (!(err instanceof Error && "code" in err && err.code === "EEXIST")) throw err;
    }
  }
  return parseJwk(readFileSync(path, "utf8"), `CAPABILITY_KEY_FILE ${path}`);
}

async function signingJwks(
  cfg: Config,
  sql: Sql,
): Promise<{ signing: unknown; extra: unknown[]; source: KeyRing["source"] }> {
  const c = cfg.capability;
  if (c.signingKey !== undefined) {
    return {
      signing: parseJwk(c.signingKey, "CAPABILITY_SIGNING_KEY"),
      extra: [],
      source: "config",
    };
  }
  if (c.keyFile !== undefined) {
    return {
      signing: keyFromFile(c.keyFile, await generateSigningJwk()),
      extra: [],
      source: "file",
    };
  }
  const fresh = await generateSigningJwk();
  await signingKeyInsertFirst(sql, { kid: fresh.kid, privateJwk: fresh });
  const [newest, ...older] = await signingKeyList(sql);
  if (newest === undefined) throw new Error("no signing key in state.signing_keys");
  return { signing: newest, extra: older, source: "database" };
}

/** Loads the key ring once at start; a bad key stops the dispatcher with a ConfigError. */
export async function loadKeyRing(cfg: Config, sql: Sql): Promise<KeyRing> {
  const { signing, extra, source } = await signingJwks(cfg, sql);
  const named = {
    config: "CAPABILITY_SIGNING_KEY",
    file: "CAPABILITY_KEY_FILE",
    database: "the stored signing key",
  };
  const signingJwk = await withKid(checkJwk(signing, named[source]));
  if (signingJwk.d === undefined) throw new ConfigError("the signing key has no private part (d)");
  const verifyJwks = [signingJwk];
  for (const [i, jwk] of extra.entries()) {
    verifyJwks.push(await withKid(checkJwk(jwk, `stored signing key ${i}`)));
  }
  if (cfg.capability.verifyKeys !== undefined) {
    const list = parseJwk(cfg.capability.verifyKeys, "CAPABILITY_VERIFY_KEYS");
    if (!Array.isArray(list)) throw new ConfigError("CAPABILITY_VERIFY_KEYS must be a JSON array");
    for (const [i, jwk] of list.entries()) {
      verifyJwks.push(await withKid(checkJwk(jwk, `CAPABILITY_VERIFY_KEYS[${i}]`)));
    }
  }
  const verify = new Map<string, CryptoKey>();
  const jwks: PublicJwk[] = [];
  for (const jwk of verifyJwks) {
    if (verify.has(jwk.kid)) continue;
    const pub = publicOf(jwk);
    verify.set(jwk.kid, await importKey(pub, `key ${jwk.kid}`));
    jwks.push(pub);
  }
  return { signing: { kid: signingJwk.kid, signer: signerOf(signingJwk) }, verify, jwks, source };
}
