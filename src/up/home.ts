import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { generateSigningJwk } from "../dispatcher/keys";

/**
 * `./.harness/`: what `harness up` keeps between runs — the embedded
 * PostgreSQL's data, the file object store, logs, and the generated secrets
 * (internal token, signing key, database password), so a second `up` resumes.
 */

const Secrets = v.object({
  internal_auth_token: v.pipe(v.string(), v.minLength(16)),
  postgres_password: v.pipe(v.string(), v.minLength(8)),
  capability_signing_key: v.pipe(v.string(), v.minLength(1)),
  /** The dashboard's login token; added to a secrets file written before the dashboard. */
  ui_auth_token: v.optional(v.pipe(v.string(), v.minLength(16))),
});
export type Secrets = Required<v.InferOutput<typeof Secrets>>;

const newToken = () => randomBytes(24).toString("base64url");

export interface Home {
  dir: string;
  pgDir: string;
  objectsDir: string;
  logDir: string;
  secrets: Secrets;
}

async function loadOrCreateSecrets(file: string): Promise<Secrets> {
  if (existsSync(file)) {
    const parsed = v.safeParse(Secrets, JSON.parse(readFileSync(file, "utf8")));
    if (!parsed.success) {
      throw new Error(`${file} is not a harness secrets file: ${v.summarize(parsed.issues)}`);
    }
    const { ui_auth_token, ...rest } = parsed.output;
    if (ui_auth_token !== undefined) return { ...rest, ui_auth_token };
    const upgraded = { ...rest, ui_auth_token: newToken() };
    writeFileSync(file, `${JSON.stringify(upgraded, null, 2)}\n`, { mode: 0o600 });
    return upgraded;
  }
  const secrets: Secrets = {
    internal_auth_token: newToken(),
    ui_auth_token: newToken(),
    postgres_password: randomBytes(18).toString("base64url"),
    capability_signing_key: JSON.stringify(await generateSigningJwk()),
  };
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

export async function openHome(dir: string): Promise<Home> {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const home = {
    dir: root,
    pgDir: join(root, "pg"),
    objectsDir: join(root, "objects"),
    logDir: join(root, "logs"),
  };
  mkdirSync(home.objectsDir, { recursive: true });
  mkdirSync(home.logDir, { recursive: true });
  return { ...home, secrets: await loadOrCreateSecrets(join(root, "secrets.json")) };
}
