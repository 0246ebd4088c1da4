import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { importJWK, SignJWT } from "jose";
import {
  CAPABILITY_AUDIENCE,
  CAPABILITY_ISSUER,
  CAPABILITY_TYP,
  SCOPES,
  type Scope,
} from "../../src/contracts/capability";
import { generateSigningJwk } from "../../src/dispatcher/keys";
import { prng } from "../../src/verify/chaos";
import { type Claimed, claim, drained, fence, HEADER } from "../dispatcher/_client";
import { ConformanceChecker } from "../support/conformance";
import { waitFor } from "../support/wait";
import { dispatcherOf, objectStoreUrl, stateSnapshot } from "./http";
import { TestPlatform } from "./platform";

/**
 * HTTP fuzz of the four task endpoints: thousands of seeded, generated
 * requests — wrong types, unknown fields, huge numbers, unicode, nested junk,
 * bad JSON, bad content types, missing / garbage / almost-valid tokens and
 * valid tokens for another task, attempt, org or scope. Every one is meant to
 * be refused: none may get a 5xx or a 2xx, every answer must be an
 * `{error, message}` body of a status the exported contract allows, and the
 * state tables must be exactly as before.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20250601);
const CASES_PER_ENDPOINT = 2500;
const IN_FLIGHT = 8;

/** The seeded PRNG of `harness verify --chaos`: the same sequence for the same seed. */
class Gen {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const k = this.int(items.length);
    for (const [i, item] of items.entries()) if (i === k) return item;
    throw new Error("pick from an empty list");
  }
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => this.int(16).toString(16)).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
  }
  text(max: number): string {
    const alphabet = "abcXYZ019 _-./:%\\\"'{}[]\u00e9\u00df\u4e2d\u6587\u{1f525}\u202e\u0000\n";
    const chars = [...alphabet];
    return Array.from({ length: this.int(max + 1) }, () => this.pick(chars)).join("");
  }
}

type Endpoint = "task-claim" | "heartbeat" | "buffer-publish" | "complete";
const PATHS: Record<Endpoint, string> = {
  "task-claim": "/internal/task-claim",
  heartbeat: "/v1/task/heartbeat",
  "buffer-publish": "/v1/task/buffer-publish",
  complete: "/v1/task/complete",
};
const ENDPOINTS: readonly Endpoint[] = ["task-claim", "heartbeat", "buffer-publish", "complete"];
const SCOPE_OF: Record<Exclude<Endpoint, "task-claim">, Scope> = {
  heartbeat: SCOPES.heartbeat,
  "buffer-publish": SCOPES.bufferPublish,
  complete: SCOPES.complete,
};

interface Case {
  endpoint: Endpoint;
  what: string[];
  headers: Record<string, string>;
  body: string | Uint8Array;
}

interface Fixtures {
  /** The target task: running, live lease, attempt 1. */
  a: Claimed;
  /** Another task of the same org, live. */
  b: Claimed;
  /** A task at attempt 2; `c1` is its fenced-out attempt 1. */
  c1: Claimed;
  c2: Claimed;
  /** A task of another org, live. */
  d: Claimed;
  internalToken: string;
  store: string;
  /** Tokens for task A signed with the dispatcher's key but refused: [label, token, scope it lacks or undefined]. */
  forged: Array<{ what: string; token: string; lacks?: Scope }>;
}

const JUNK_SCALARS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 53 + 1,
  1e308,
  -1e308,
  "",
  " ",
  "0",
  "true",
  "null",
  "\u0000",
  "\ud800",
  "\u202e\u0041",
  "\u{1f525}".repeat(300),
  "x".repeat(5000),
  "日本語テキスト",
  "<script>alert(1)</script>",
  "'; DROP TABLE state.tasks; --",
];

function junk(g: Gen, depth = 0): unknown {
  const roll = g.int(depth >= 3 ? 3 : 6);
  if (roll === 0) return g.pick(JUNK_SCALARS);
  if (roll === 1) return g.text(40);
  if (roll === 2) return g.uuid();
  if (roll === 3) return Array.from({ length: g.int(4) }, () => junk(g, depth + 1));
  if (roll === 4) {
    const o: Record<string, unknown> = {};
    for (let i = g.int(4); i > 0; i--) o[g.text(8)] = junk(g, depth + 1);
    return o;
  }
  return [[[[[{ a: [[[{}]]] }]]]]];
}

function validBody(f: Fixtures, endpoint: Endpoint): Record<string, unknown> {
  if (endpoint === "task-claim") return { task_id: f.a.task_id };
  const base = fence(f.a);
  if (endpoint !== "buffer-publish") return base;
  return {
    ...base,
    batch_uri: `${f.store}/${f.a.org_id}/${f.a.task_id}/1-fuzz.jsonl`,
    content_type: "application/x-ndjson",
    batch_size_bytes: 100,
  };
}

/** One change to the body object that, alone, makes a request with A's token refused. */
function mutateBody(g: Gen, f: Fixtures, endpoint: Endpoint, b: Record<string, unknown>): string {
  // Only the contract's own fields are dropped or retyped (dropping an added unknown one would undo it).
  const known = Object.keys(validBody(f, endpoint));
  const keys = Object.keys(b).filter((k) => known.includes(k));
  if (keys.length === 0) {
    b.extra = junk(g);
    return "unknown field in an emptied body";
  }
  const key = g.pick(keys);
  const prefix = `${f.store}/${f.a.org_id}/${f.a.task_id}/`;
  const options: Array<() => string> = [
    () => {
      delete b[key];
      return `drop ${key}`;
    },
    () => {
      const extra = g.pick([
        "extra",
        "admin",
        "org_id",
        "status",
        "Task_Id",
        "task_id ",
        g.text(6),
      ]);
      if (known.includes(extra)) return mutateBody(g, f, endpoint, b);
      b[extra] = junk(g);
      return `unknown field ${JSON.stringify(extra)}`;
    },
    () => {
      const value = junk(g);
      if (key === "task_id" && endpoint === "task-claim" && typeof value === "string") {
        b[key] = value.length === 36 ? value : 17;
      } else b[key] = value;
      return `${key} = junk`;
    },
    () => {
      if (!("task_id" in b)) return mutateBody(g, f, endpoint, b);
      b.task_id = g.pick([
        f.b.task_id,
        f.d.task_id,
        g.uuid(),
        f.a.task_id.toUpperCase(),
        ` ${f.a.task_id}`,
        f.a.task_id.slice(1),
        `${f.a.task_id}0`,
      ]);
      return "task_id of another task / almost A's";
    },
  ];
  if (endpoint !== "task-claim") {
    options.push(
      () => {
        b.attempt = g.pick([0, -1, 2, 3, 1.5, 1e9, 2 ** 31, 2 ** 53 + 1, "1", null, [1], { n: 1 }]);
        return `attempt = ${JSON.stringify(b.attempt)}`;
      },
      () => {
        b.lease_token = g.pick([
          f.b.lease_token,
          f.c1.lease_token,
          g.uuid(),
          f.a.lease_token.slice(0, 35),
          `${f.a.lease_token}0`,
          f.a.lease_token.replaceAll("-", ""),
          f.a.capability_token,
        ]);
        return "lease_token of another lease / almost A's";
      },
    );
  }
  if (endpoint === "buffer-publish") {
    options.push(
      () => {
        b.batch_uri = g.pick([
          `${f.store}/${f.d.org_id}/${f.a.task_id}/1-x.jsonl`,
          `${f.store}/${f.a.org_id}/${f.b.task_id}/1-x.jsonl`,
          `${prefix}../${f.b.task_id}/1-x.jsonl`,
          `${prefix}%2e%2e/1-x.jsonl`,
          `${prefix}sub/1-x.jsonl`,
          `${prefix}`,
          `${prefix}.hidden`,
          `${prefix}${"a".repeat(300)}`,
          `${prefix}1-x.jsonl?x=1`,
          `${prefix}1-x.jsonl#frag`,
          `${prefix}\u00e9t\u00e9.jsonl`,
          `${prefix}1\\x.jsonl`,
          "file:///etc/passwd",
          `s3://bucket/${f.a.org_id}/${f.a.task_id}/1-x.jsonl`,
          `${f.store}/${f.a.org_id}/${f.a.task_id}`,
          "",
        ]);
        return `batch_uri = ${String(b.batch_uri).slice(0, 60)}`;
      },
      () => {
        b.content_type = g.pick([
          "application/json",
          "",
          "text/plain",
          "application/x-ndjson; charset=utf-8",
          "APPLICATION/X-NDJSON",
          "application/x-ndjson\u0000",
        ]);
        return `content_type = ${JSON.stringify(b.content_type)}`;
      },
      () => {
        b.batch_size_bytes = g.pick([0, -1, 2.5, 1e12, 2 ** 53 + 1, 1e308, "100", null]);
        return `batch_size_bytes = ${JSON.stringify(b.batch_size_bytes)}`;
      },
    );
  }
  return g.pick(options)();
}

/** A body text that is not an acceptable JSON object at all. */
function rawBody(g: Gen, valid: string): [string, string | Uint8Array] {
  const cut = 1 + g.int(Math.max(1, valid.length - 1));
  const options: Array<() => [string, string | Uint8Array]> = [
    () => [`truncated at ${cut}`, valid.slice(0, cut)],
    () => [
      "trailing junk",
      `${valid}${g.pick([",", "}", "]", "x", "{}", " null", "\u0000", "//c"])}`,
    ],
    () => ["leading junk", `${g.pick(["[", "x", ",", "{", "\u0000", "/*c*/"])}${valid}`],
    () => [
      "not an object",
      g.pick(["", " ", "\n", "null", "true", "0", "-1", '""', "[]", "[{}]", "{}", '"{}"']),
    ],
    () => ["single quotes", valid.replaceAll('"', "'")],
    () => ["unquoted keys", valid.replace(/"([a-z_]+)":/g, "$1:")],
    () => ["__proto__ key", `{"__proto__":{"admin":true},${valid.slice(1)}`],
    () => ["constructor key", `{"constructor":{"prototype":{}},${valid.slice(1)}`],
    () => [
      "huge exponent",
      valid.replace(/("attempt"|"batch_size_bytes"|"task_id"):[^,}]+/, "$1:1e999"),
    ],
    () => ["NaN", valid.replace(/("attempt"|"task_id"):[^,}]+/, "$1:NaN")],
    () => {
      const bytes = new TextEncoder().encode(valid);
      const at = 2 + g.int(Math.max(1, bytes.length - 4));
      const out = new Uint8Array(bytes.length + 2);
      out.set(bytes.subarray(0, at), 0);
      out.set([0xff, 0xc3], at);
      out.set(bytes.subarray(at), at + 2);
      return [`invalid UTF-8 at byte ${at}`, out];
    },
    () => ["deep nesting", `${"[".repeat(20_000)}${"]".repeat(20_000)}`],
    () => ["70 KB body", `{"task_id":"${"a".repeat(70 * 1024)}"}`],
  ];
  return g.pick(options)();
}

const NEUTRAL_HEADERS: Array<Record<string, string>> = [
  {},
  { "content-type": "text/plain" },
  { "content-type": "application/xml" },
  { "content-type": "application/json; charset=utf-16" },
  { "content-type": "multipart/form-data; boundary=x" },
  { "content-type": "application/x-www-form-urlencoded" },
  { "content-type": "\u00e9\u00e9/\u00e9\u00e9" },
  { "x-forwarded-for": "10.0.0.1, 127.0.0.1" },
  { cookie: "session=\u00ff\u00fe; a=b" },
  { "x-junk": "x".repeat(4000) },
];

function generate(g: Gen, f: Fixtures, endpoint: Endpoint): Case {
  const what: string[] = [];
  const headers: Record<string, string> = { ...g.pick(NEUTRAL_HEADERS) };
  if (!("content-type" in headers) && g.chance(0.8)) headers["content-type"] = "application/json";
  let refused = false;

  if (endpoint === "task-claim") {
    if (g.chance(0.35)) {
      const auth = g.pick([
        undefined,
        "",
        "Bearer",
        "Bearer ",
        `Bearer ${f.internalToken}x`,
        `Bearer ${f.internalToken.slice(0, -1)}`,
        `bearer ${f.internalToken}`,
        `Bearer  ${f.internalToken}`,
        `Basic ${btoa(`user:${f.internalToken}`)}`,
        f.internalToken,
        `Bearer ${f.a.capability_token}`,
        `Bearer ${"\u00e9".repeat(100)}`,
      ]);
      if (auth !== undefined) headers.authorization = auth;
      what.push(`authorization ${JSON.stringify(auth)?.slice(0, 40)}`);
      refused = true;
    } else headers.authorization = `Bearer ${f.internalToken}`;
  } else {
    const scope = SCOPE_OF[endpoint];
    if (g.chance(0.4)) {
      const forged = f.forged.filter((x) => x.lacks === undefined || x.lacks === scope);
      const sig = f.a.capability_token.slice(-10);
      const flipped = `${f.a.capability_token.slice(0, -10)}${sig[0] === "A" ? "B" : "A"}${sig.slice(1)}`;
      const [label, token] = g.pick<[string, string | undefined]>([
        ["no capability", undefined],
        ["empty capability", ""],
        ["garbage capability", g.text(30).replace(/[^\x20-\x7e]/g, "x")],
        ["long garbage capability", "e".repeat(8000)],
        ["latin-1 capability", "\u00e9\u00e8.\u00ff.\u00fe"],
        ["flipped signature", flipped],
        ["truncated token", f.a.capability_token.slice(0, -3)],
        ["4-part token", `${f.a.capability_token}.x`],
        ["2-part token", f.a.capability_token.split(".").slice(0, 2).join(".")],
        ["Bearer-prefixed token", `Bearer ${f.a.capability_token}`],
        ["another task's token", f.b.capability_token],
        ["another org's token", f.d.capability_token],
        ["a fenced-out attempt's token", f.c1.capability_token],
        ["another task's current attempt's token", f.c2.capability_token],
        ["internal token as capability", f.internalToken],
        ...forged.map((x): [string, string] => [x.what, x.token]),
      ]);
      if (token !== undefined) headers[HEADER] = token;
      what.push(label);
      refused = true;
    } else headers[HEADER] = f.a.capability_token;
    if (g.chance(0.1)) headers.authorization = `Bearer ${f.internalToken}`;
  }

  const body = validBody(f, endpoint);
  let text: string | Uint8Array;
  if (!refused || g.chance(0.5)) {
    if (g.chance(0.3)) {
      const [label, raw] = rawBody(g, JSON.stringify(body));
      what.push(label);
      text = raw;
    } else {
      for (let n = 1 + g.int(3); n > 0; n--) what.push(mutateBody(g, f, endpoint, body));
      text = g.chance(0.1) ? JSON.stringify(junk(g)) : JSON.stringify(body);
      if (text === undefined) text = "";
    }
  } else text = JSON.stringify(body);
  if (g.chance(0.05) && typeof text === "string") {
    text = `${text}${" ".repeat(70 * 1024)}`;
    what.push("padded past 64 KB");
  }
  return { endpoint, what, headers, body: text };
}

interface Outcome {
  c: Case;
  status: number;
  text: string;
}

let p: TestPlatform;
let f: Fixtures;
let checker: ConformanceChecker;

async function forgeFor(
  c: Claimed,
  signing: Awaited<ReturnType<typeof generateSigningJwk>>,
  over: Record<string, unknown>,
  kidOverride?: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = await importJWK(signing, "EdDSA");
  return new SignJWT({
    iss: CAPABILITY_ISSUER,
    aud: CAPABILITY_AUDIENCE,
    sub: `task/${c.task_id}/attempt/${c.attempt}`,
    iat: now,
    nbf: now,
    exp: now + 600,
    jti: randomUUID(),
    org_id: c.org_id,
    task_id: c.task_id,
    attempt: c.attempt,
    scope: Object.values(SCOPES).join(" "),
    ...over,
  })
    .setProtectedHeader({ alg: "EdDSA", typ: CAPABILITY_TYP, kid: kidOverride ?? signing.kid })
    .sign(key);
}

beforeAll(async () => {
  const signing = await generateSigningJwk();
  const other = await generateSigningJwk();
  // Long leases: nothing expires (and no reaper writes) while the fuzz runs.
  p = await TestPlatform.start({ leaseMs: 120_000, visibilityMs: 60_000 });
  const disp = await p.startDispatcher({ CAPABILITY_SIGNING_KEY: JSON.stringify(signing) });
  const [aId, bId, cId] = await p.createTasks("fuzz", 3, 2);
  const [dId] = await p.createTasks("fuzz-other", 1, 2);
  if (aId === undefined || bId === undefined || cId === undefined || dId === undefined)
    throw new Error("tasks not created");
  const c1 = await claim(disp, cId);
  await p.state
    .sql`UPDATE state.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = ${cId}`;
  const c2 = await claim(disp, cId);
  const a = await claim(disp, aId);
  const base = { a, b: await claim(disp, bId), c1, c2, d: await claim(disp, dId) };
  const now = Math.floor(Date.now() / 1000);
  const forged: Fixtures["forged"] = [];
  for (const scope of Object.values(SCOPES)) {
    const rest = Object.values(SCOPES).filter((s) => s !== scope);
    forged.push({
      what: `A's token without ${scope}`,
      token: await forgeFor(a, signing, { scope: rest.join(" ") }),
      lacks: scope,
    });
  }
  forged.push(
    {
      what: "A's token, expired",
      token: await forgeFor(a, signing, { iat: now - 900, nbf: now - 900, exp: now - 300 }),
    },
    { what: "A's token, not yet valid", token: await forgeFor(a, signing, { nbf: now + 300 }) },
    { what: "A's token, wrong iss", token: await forgeFor(a, signing, { iss: "evil" }) },
    { what: "A's token, wrong aud", token: await forgeFor(a, signing, { aud: "evil" }) },
    { what: "A's token, attempt 2", token: await forgeFor(a, signing, { attempt: 2 }) },
    { what: "A's token, extra claim", token: await forgeFor(a, signing, { admin: true }) },
    { what: "A's token, other key", token: await forgeFor(a, other, {}) },
    { what: "A's token, other key with our kid", token: await forgeFor(a, other, {}, signing.kid) },
    { what: "A's token, unknown kid", token: await forgeFor(a, signing, {}, "nope") },
  );
  f = { ...base, internalToken: disp.internalToken, store: objectStoreUrl(p), forged };
  checker = await ConformanceChecker.load();
  await drained(p.state.sql);
});
afterAll(async () => {
  await p.stop();
});

async function sendOnce(url: string, c: Case): Promise<Outcome> {
  const res = await fetch(`${url}${PATHS[c.endpoint]}`, {
    method: "POST",
    headers: c.headers,
    body: c.body,
  });
  return { c, status: res.status, text: await res.text() };
}

let unavailable = 0;
/**
 * Sends a case; a 503 `unavailable` (the shared test PostgreSQL momentarily
 * out of connections) is what a client must retry, so it is retried. Any
 * other answer, a 500 included, is final.
 */
function send(url: string, c: Case): Promise<Outcome> {
  return waitFor(
    async () => {
      const o = await sendOnce(url, c);
      if (o.status !== 503 || !o.text.includes('"unavailable"')) return o;
      unavailable++;
      return undefined;
    },
    {
      what: `an answer other than 503 to ${c.endpoint} [${c.what.join("; ")}]`,
      intervalMs: 200,
      timeoutMs: 15_000,
    },
  );
}

describe("invariants: HTTP fuzz of the task API", () => {
  test(`${4 * CASES_PER_ENDPOINT} generated refusable requests (seed ${SEED}): no 5xx, no 2xx, {error, message} bodies, nothing changed`, async () => {
    const url = dispatcherOf(p).url;
    const g = new Gen(SEED);
    const cases: Case[] = [];
    for (const endpoint of ENDPOINTS)
      for (let i = 0; i < CASES_PER_ENDPOINT; i++) cases.push(generate(g, f, endpoint));
    const before = await stateSnapshot(p);

    const outcomes: Outcome[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < cases.length) {
          const c = cases[next++];
          if (c !== undefined) outcomes.push(await send(url, c));
        }
      }),
    );
    await drained(p.state.sql);
    const after = await stateSnapshot(p);

    const show = (o: Outcome) =>
      `${o.c.endpoint} [${o.c.what.join("; ")}] → ${o.status} ${o.text.slice(0, 200)}`;
    expect(outcomes.length).toBe(cases.length);
    expect(outcomes.filter((o) => o.status >= 500).map(show)).toEqual([]);
    expect(outcomes.filter((o) => o.status < 400).map(show)).toEqual([]);
    for (const o of outcomes) {
      let body: unknown;
      try {
        body = JSON.parse(o.text);
      } catch {
        body = o.text;
      }
      checker.checkHttpResponse({
        method: "POST",
        path: PATHS[o.c.endpoint],
        status: o.status,
        body,
      });
    }
    checker.assertConforms();
    expect(after).toEqual(before);

    // The mix really reached past auth, parsing and into the fencing.
    const statuses = new Map<number, number>();
    for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
    for (const s of [400, 401, 403, 404, 409, 413, 422])
      expect(statuses.get(s) ?? 0).toBeGreaterThan(5);
    console.log(
      `fuzz seed ${SEED}: ${JSON.stringify(Object.fromEntries(statuses))}, ${unavailable} retried 503(s)`,
    );
  }, 60_000);

  test("the snapshot sees a change: one valid heartbeat of A changes it", async () => {
    const before = await stateSnapshot(p);
    const res = await fetch(`${dispatcherOf(p).url}/v1/task/heartbeat`, {
      method: "POST",
      headers: { [HEADER]: f.a.capability_token, "content-type": "application/json" },
      body: JSON.stringify(fence(f.a)),
    });
    expect(res.status).toBe(200);
    expect(await stateSnapshot(p)).not.toEqual(before);
  });
});
