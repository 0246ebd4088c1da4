import * as v from "valibot";
import { ruleOnly } from "./issue-text";

/**
 * The environment of ../shared/DESIGN.md, parsed once with valibot.
 * A bad value stops the process at start with one line naming the variable.
 */

const positiveInt = (fallback: number, max = 2_147_483_647) =>
  v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, "must be a positive integer"),
      v.transform(Number),
      v.integer(),
      v.minValue(1, "must be at least 1"),
      v.maxValue(max, `must be at most ${max}`),
    ),
    String(fallback),
  );

const postgresUrl = v.optional(
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL"),
  ),
);

/**
 * These URLs are shown in logs and messages, so they may not carry a
 * password: their credentials have variables of their own (S3_* keys,
 * INTERNAL_AUTH_TOKEN). Database URLs may; they are only ever shown
 * through describeUrl (host, port and database).
 */
const noCredentials = v.check<string, string>(
  (s) => !/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(s),
  "must not carry credentials (user:password@): give them in their own variables",
);

const httpUrl = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^https?:\/\/[^/]/, "must be an http:// or https:// URL"),
  noCredentials,
  v.transform((s) => s.replace(/\/+$/, "")),
);

const objectStoreUrl = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^(file:\/\/\/|s3:\/\/[^/]+)/, "must be file:///absolute/dir or s3://bucket[/prefix]"),
  noCredentials,
  v.transform((s) => s.replace(/\/+$/, "")),
);

/** `nats://host:port`, or several comma-separated (the later ones may leave out `nats://`). */
export const NatsUrl = v.pipe(
  v.string(),
  v.trim(),
  v.regex(
    /^nats:\/\/[^,\s]+(,(nats:\/\/)?[^,\s]+)*$/,
    "must be nats://host:port[,host:port…] (leave it unset for pgqueue in the state database)",
  ),
);

const queueNamespace = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^[A-Za-z0-9_-]{1,32}$/, "must be 1 to 32 letters, digits, - or _"),
);

const optionalText = v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty")));

export const EnvSchema = v.object({
  DATABASE_URL: postgresUrl,
  STATE_DATABASE_URL: postgresUrl,
  DATA_DATABASE_URL: postgresUrl,
  OBJECT_STORE_URL: v.optional(objectStoreUrl),
  S3_ENDPOINT: v.optional(httpUrl),
  S3_ACCESS_KEY_ID: optionalText,
  S3_SECRET_ACCESS_KEY: optionalText,
  S3_REGION: optionalText,
  DISPATCHER_URL: v.optional(httpUrl, "http://127.0.0.1:8080"),
  INTERNAL_AUTH_TOKEN: v.optional(
    v.pipe(v.string(), v.minLength(16, "must be at least 16 characters")),
  ),
  PORT: positiveInt(8080, 65_535),
  /** The dashboard's port (`harness ui`). */
  UI_PORT: positiveInt(8090, 65_535),
  /** The dashboard's login token. */
  UI_AUTH_TOKEN: v.optional(v.pipe(v.string(), v.minLength(16, "must be at least 16 characters"))),
  LEASE_DURATION_MS: positiveInt(30_000),
  VISIBILITY_TIMEOUT_MS: positiveInt(30_000),
  MAX_ATTEMPTS: positiveInt(5, 1_000),
  MAX_RECEIVES: positiveInt(5, 1_000),
  /** Unset: pgqueue in the STATE database; `nats://…`: NATS JetStream. */
  QUEUE_URL: v.optional(NatsUrl),
  /** Prefixes the broker's streams and consumers. */
  QUEUE_NAMESPACE: v.optional(queueNamespace, "harness"),
  /** Largest batch a worker may announce and the sink will fetch. */
  MAX_BATCH_BYTES: positiveInt(64 * 1024 * 1024),
  /** Distinct batches one attempt may buffer-publish. */
  MAX_BATCHES_PER_ATTEMPT: positiveInt(16, 100_000),
  /** Requests the dispatcher handles at once; past it, 503 at once. */
  MAX_CONCURRENT_REQUESTS: positiveInt(1024, 1_000_000),
  /** Private signing JWK (JSON) for capability tokens; see `harness keygen`. */
  CAPABILITY_SIGNING_KEY: optionalText,
  /** Extra public JWKs (JSON array) still accepted, for key rotation. */
  CAPABILITY_VERIFY_KEYS: optionalText,
  /** Where a generated signing key is kept when none is configured. */
  CAPABILITY_KEY_FILE: optionalText,
  /** Capability token lifetime; defaults to one hour plus the lease length. */
  CAPABILITY_TTL_MS: v.optional(positiveInt(1)),
  /** Comma-separated failpoints, see src/failpoints.ts. */
  HARNESS_FAILPOINTS: v.optional(v.string()),
  LOG_LEVEL: v.optional(v.picklist(["debug", "info", "warn", "error"]), "info"),
  /** Set by `.harness/env`: the settings came from the `harness up` keeping its state there. */
  HARNESS_UP_DIR: optionalText,
});

export type Env = v.InferOutput<typeof EnvSchema>;

/**
 * The variables whose value a configuration error may repeat: plain numbers
 * and names. Any other (a token, a key, a URL that may hold a password) is
 * named with its rule only, never its value.
 */
const SHOWN: ReadonlySet<string> = new Set([
  "PORT",
  "UI_PORT",
  "LEASE_DURATION_MS",
  "VISIBILITY_TIMEOUT_MS",
  "MAX_ATTEMPTS",
  "MAX_RECEIVES",
  "QUEUE_NAMESPACE",
  "MAX_BATCH_BYTES",
  "MAX_BATCHES_PER_ATTEMPT",
  "MAX_CONCURRENT_REQUESTS",
  "CAPABILITY_TTL_MS",
  "LOG_LEVEL",
]);

export interface Config {
  stateDatabaseUrl: string | undefined;
  dataDatabaseUrl: string | undefined;
  objectStoreUrl: string | undefined;
  s3: {
    endpoint: string | undefined;
    accessKeyId: string | undefined;
    secretAccessKey: string | undefined;
    region: string | undefined;
  };
  dispatcherUrl: string;
  internalAuthToken: string | undefined;
  port: number;
  ui: { port: number; authToken: string | undefined };
  leaseDurationMs: number;
  visibilityTimeoutMs: number;
  maxAttempts: number;
  maxReceives: number;
  queue: { url: string | undefined; namespace: string };
  maxBatchBytes: number;
  maxBatchesPerAttempt: number;
  maxConcurrentRequests: number;
  capability: {
    signingKey: string | undefined;
    verifyKeys: string | undefined;
    keyFile: string | undefined;
    ttlMs: number | undefined;
  };
  failpoints: string | undefined;
  logLevel: "debug" | "info" | "warn" | "error";
  /** The folder of the `harness up` whose `.harness/env` set these variables, if one did. */
  upDir: string | undefined;
}

/** A configuration problem: its message is the one line printed before exit 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset, as shells often export VAR= to clear.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const result = v.safeParse(EnvSchema, present, { message: ruleOnly });
  if (!result.success) {
    const issue = result.issues[0];
    const key = issue.path?.[0]?.key;
    const name = typeof key === "string" ? key : "environment";
    const shown =
      typeof key === "string" && SHOWN.has(key) ? ` (got ${JSON.stringify(present[key])})` : "";
    throw new ConfigError(`${name} ${issue.message}${shown}`);
  }
  const e = result.output;
  return {
    stateDatabaseUrl: e.STATE_DATABASE_URL ?? e.DATABASE_URL,
    dataDatabaseUrl: e.DATA_DATABASE_URL ?? e.DATABASE_URL,
    objectStoreUrl: e.OBJECT_STORE_URL,
    s3: {
      endpoint: e.S3_ENDPOINT,
      accessKeyId: e.S3_ACCESS_KEY_ID,
      secretAccessKey: e.S3_SECRET_ACCESS_KEY,
      region: e.S3_REGION,
    },
    dispatcherUrl: e.DISPATCHER_URL,
    internalAuthToken: e.INTERNAL_AUTH_TOKEN,
    port: e.PORT,
    ui: { port: e.UI_PORT, authToken: e.UI_AUTH_TOKEN },
    leaseDurationMs: e.LEASE_DURATION_MS,
    visibilityTimeoutMs: e.VISIBILITY_TIMEOUT_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    maxReceives: e.MAX_RECEIVES,
    queue: { url: e.QUEUE_URL, namespace: e.QUEUE_NAMESPACE },
    maxBatchBytes: e.MAX_BATCH_BYTES,
    maxBatchesPerAttempt: e.MAX_BATCHES_PER_ATTEMPT,
    maxConcurrentRequests: e.MAX_CONCURRENT_REQUESTS,
    capability: {
      signingKey: e.CAPABILITY_SIGNING_KEY,
      verifyKeys: e.CAPABILITY_VERIFY_KEYS,
      keyFile: e.CAPABILITY_KEY_FILE,
      ttlMs: e.CAPABILITY_TTL_MS,
    },
    failpoints: e.HARNESS_FAILPOINTS,
    logLevel: e.LOG_LEVEL,
    upDir: e.HARNESS_UP_DIR,
  };
}

let loaded: Config | undefined;

/** The process configuration, parsed from `process.env` on first use. */
export function config(): Config {
  loaded ??= parseConfig(process.env);
  return loaded;
}

export function requireStateDatabase(c: Config): string {
  if (c.stateDatabaseUrl === undefined) {
    throw new ConfigError("DATABASE_URL (or STATE_DATABASE_URL) is not set");
  }
  return c.stateDatabaseUrl;
}

export function requireDataDatabase(c: Config): string {
  if (c.dataDatabaseUrl === undefined) {
    throw new ConfigError("DATABASE_URL (or DATA_DATABASE_URL) is not set");
  }
  return c.dataDatabaseUrl;
}

export function requireObjectStore(c: Config): string {
  if (c.objectStoreUrl === undefined) {
    throw new ConfigError("OBJECT_STORE_URL is not set (file:///abs/dir or s3://bucket/prefix)");
  }
  return c.objectStoreUrl;
}

export function requireInternalAuthToken(c: Config): string {
  if (c.internalAuthToken === undefined) {
    throw new ConfigError("INTERNAL_AUTH_TOKEN is not set (at least 16 characters)");
  }
  return c.internalAuthToken;
}

export function requireUiAuthToken(c: Config): string {
  if (c.ui.authToken === undefined) {
    throw new ConfigError(
      "UI_AUTH_TOKEN is not set (the dashboard's login token, at least 16 characters)",
    );
  }
  return c.ui.authToken;
}
