import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import * as v from "valibot";
import { type Carrier, ContractIndex } from "../../src/contracts/registry";
import type { Db } from "../../src/db/connect";

/**
 * Live conformance: checks traffic against the EXPORTED JSON Schemas in
 * contracts/ with an independent validator (Ajv, draft 2020-12, with
 * ajv-formats), never with the valibot schemas the code itself uses. HTTP
 * exchanges are matched to a contract by method, path and status, queue
 * messages by queue name, all through the carriers listed in index.json.
 * Mismatches are collected; `assertConforms()` fails with all of them.
 *
 * For live traffic: put `conformanceProxy()` between workers and the
 * dispatcher (DISPATCHER_URL = proxy.url), call `checkQueueTables(sql)` on
 * the state database, and `checkJsonl()` on the batches in the object store.
 */

export const CONTRACTS_DIR = resolve(import.meta.dir, "..", "..", "contracts");

export interface Mismatch {
  /** The contract checked against; undefined when no contract covers the traffic. */
  contract: string | undefined;
  /** What was checked: `POST /v1/task/heartbeat → 200`, `queue buffer_queue message 12`… */
  where: string;
  problems: string[];
  value: unknown;
}

export interface HttpRequestRecord {
  method: string;
  /** A path, or a full URL (its query is ignored). */
  path: string;
  body: unknown;
}

export interface HttpResponseRecord extends HttpRequestRecord {
  status: number;
}

const pathOf = (pathOrUrl: string): string =>
  new URL(pathOrUrl, "http://conformance.invalid").pathname;

function describeError(e: ErrorObject): string {
  const at = e.instancePath === "" ? "(root)" : e.instancePath;
  const detail =
    e.keyword === "additionalProperties" && typeof e.params.additionalProperty === "string"
      ? ` '${e.params.additionalProperty}'`
      : e.keyword === "enum" || e.keyword === "const"
        ? ` ${JSON.stringify(e.params.allowedValues ?? e.params.allowedValue)}`
        : "";
  return `${at} ${e.message ?? e.keyword}${detail}`;
}

function decodeSegment(segment: string): unknown {
  const text = Buffer.from(segment, "base64url").toString("utf8");
  return JSON.parse(text);
}

export class ConformanceChecker {
  readonly mismatches: Mismatch[] = [];
  /** How many values were checked, per contract: a scenario can insist something was. */
  readonly checked = new Map<string, number>();

  private constructor(
    readonly index: ContractIndex,
    private readonly validators: ReadonlyMap<string, ValidateFunction>,
  ) {}

  /** Loads index.json and every schema it names from a contracts folder. */
  static async load(dir: string = CONTRACTS_DIR): Promise<ConformanceChecker> {
    const raw: unknown = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    const parsed = v.safeParse(ContractIndex, raw);
    if (!parsed.success)
      throw new Error(`${dir}/index.json is not a contract index: ${v.summarize(parsed.issues)}`);
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    const validators = new Map<string, ValidateFunction>();
    for (const c of parsed.output.contracts) {
      const schema: unknown = JSON.parse(await readFile(join(dir, c.file), "utf8"));
      if (typeof schema !== "object" || schema === null)
        throw new Error(`${dir}/${c.file}: not a JSON Schema object`);
      try {
        validators.set(c.name, ajv.compile(schema));
      } catch (err) {
        throw new Error(`${dir}/${c.file}: does not compile as JSON Schema draft 2020-12`, {
          cause: err,
        });
      }
    }
    return new ConformanceChecker(parsed.output, validators);
  }

  get contractNames(): string[] {
    return [...this.validators.keys()];
  }

  /** Problems of `value` against one contract (empty when it conforms); records nothing. */
  problems(contract: string, value: unknown): string[] {
    const validate = this.validators.get(contract);
    if (validate === undefined) return [`no contract named ${contract}`];
    if (validate(value)) return [];
    return (validate.errors ?? []).map(describeError);
  }

  /** Checks `value` against a contract and records a mismatch; true when it conforms. */
  check(contract: string, value: unknown, where: string): boolean {
    this.checked.set(contract, (this.checked.get(contract) ?? 0) + 1);
    const problems = this.problems(contract, value);
    if (problems.length === 0) return true;
    this.mismatches.push({ contract, where, problems, value });
    return false;
  }

  private uncovered(where: string, value: unknown, problem: string): false {
    this.mismatches.push({ contract: undefined, where, problems: [problem], value });
    return false;
  }

  private contractFor(match: (c: Carrier) => boolean): string | undefined {
    return this.index.contracts.find((c) => c.carriers.some(match))?.name;
  }

  /** True when a contract covers answers of `GET path` (the backlog; not healthz, jwks, metrics). */
  hasGetContract(path: string): boolean {
    return this.index.contracts.some((c) =>
      c.carriers.some((k) => k.kind === "http-response" && k.method === "GET" && k.path === path),
    );
  }

  checkHttpRequest(req: HttpRequestRecord): boolean {
    const path = pathOf(req.path);
    const where = `${req.method} ${path} request`;
    const contract = this.contractFor(
      (c) => c.kind === "http-request" && c.method === req.method && c.path === path,
    );
    if (contract === undefined)
      return this.uncovered(where, req.body, "no contract for this request");
    return this.check(contract, req.body, where);
  }

  /** A response: the contract of its status on its endpoint; a claim's capability token too. */
  checkHttpResponse(res: HttpResponseRecord): boolean {
    const path = pathOf(res.path);
    const where = `${res.method} ${path} → ${res.status}`;
    const contract = this.contractFor(
      (c) =>
        c.kind === "http-response" &&
        c.method === res.method &&
        c.path === path &&
        c.status.includes(res.status),
    );
    if (contract === undefined) {
      const known = this.contractFor(
        (c) => c.kind === "http-response" && c.method === res.method && c.path === path,
      );
      const why =
        known === undefined ? "no contract for this endpoint" : "status not in the contract";
      return this.uncovered(where, res.body, why);
    }
    const ok = this.check(contract, res.body, where);
    if (ok && contract === "claim_response" && typeof res.body === "object" && res.body !== null) {
      const token = "capability_token" in res.body ? res.body.capability_token : undefined;
      if (typeof token === "string")
        return this.checkCapabilityToken(token, `${where} capability_token`);
    }
    return ok;
  }

  /** A compact JWS: its protected header and its claims, each against its contract. */
  checkCapabilityToken(token: string, where = "capability token"): boolean {
    const parts = token.split(".");
    if (parts.length !== 3) return this.uncovered(where, token, "not a compact JWS (3 parts)");
    const [header = "", claims = ""] = parts;
    let decoded: [unknown, unknown];
    try {
      decoded = [decodeSegment(header), decodeSegment(claims)];
    } catch {
      return this.uncovered(where, token, "header or claims are not base64url JSON");
    }
    const headerOk = this.check("capability_header", decoded[0], `${where} header`);
    const claimsOk = this.check("capability_claims", decoded[1], `${where} claims`);
    return headerOk && claimsOk;
  }

  /** A queue message; a dead letter in `<queue>.dlq` keeps the contract of `<queue>`. */
  checkQueueMessage(queue: string, payload: unknown, label = "message"): boolean {
    const base = queue.endsWith(".dlq") ? queue.slice(0, -".dlq".length) : queue;
    const where = `queue ${queue} ${label}`;
    const contract = this.contractFor((c) => c.kind === "queue-message" && c.queue === base);
    if (contract === undefined) return this.uncovered(where, payload, "no contract for this queue");
    return this.check(contract, payload, where);
  }

  /** Each line of a JSONL batch against `alert_line`; a line that is not JSON is a mismatch. */
  checkJsonl(text: string, where = "batch"): boolean {
    let ok = true;
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    lines.forEach((line, i) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        ok = this.uncovered(`${where} line ${i + 1}`, line, "not JSON");
        return;
      }
      ok = this.check("alert_line", value, `${where} line ${i + 1}`) && ok;
    });
    return ok;
  }

  /**
   * Every message in state.queue_messages and every row of state.outbox
   * (what was and will be published), and every task payload. Returns how
   * many values were checked.
   */
  async checkQueueTables(sql: Db): Promise<number> {
    let n = 0;
    const messages = await sql<{ id: string; queue_name: string; payload: unknown }[]>`
      SELECT id::text AS id, queue_name, payload FROM state.queue_messages ORDER BY id`;
    for (const m of messages) {
      this.checkQueueMessage(m.queue_name, m.payload, `message ${m.id}`);
      n++;
    }
    const outbox = await sql<{ id: string; queue_name: string; payload: unknown }[]>`
      SELECT id::text AS id, queue_name, payload FROM state.outbox ORDER BY id`;
    for (const o of outbox) {
      this.checkQueueMessage(o.queue_name, o.payload, `outbox row ${o.id}`);
      n++;
    }
    const tasks = await sql<{ id: string; payload: unknown }[]>`
      SELECT id::text AS id, payload FROM state.tasks ORDER BY id`;
    for (const t of tasks) {
      this.check("task_payload", t.payload, `state.tasks ${t.id} payload`);
      n++;
    }
    return n;
  }

  report(): string {
    return this.mismatches
      .map((m) => {
        const against = m.contract === undefined ? "no contract" : `contract ${m.contract}`;
        const value = JSON.stringify(m.value) ?? String(m.value);
        const shown = value.length > 300 ? `${value.slice(0, 297)}...` : value;
        return `${m.where} (${against}):\n    ${m.problems.join("\n    ")}\n    value: ${shown}`;
      })
      .join("\n");
  }

  /** Throws with every mismatch when there is any. */
  assertConforms(): void {
    if (this.mismatches.length > 0)
      throw new Error(
        `${this.mismatches.length} value(s) do not conform to the exported contracts:\n${this.report()}`,
      );
  }
}

/** Reads a body as JSON, or keeps the text when it is not JSON (the schema then refuses it). */
function parseBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface ConformanceProxy {
  /** Give this to workers as DISPATCHER_URL. */
  url: string;
  /** How many exchanges went through. */
  exchanges(): number;
  stop(): Promise<void>;
}

/**
 * An HTTP proxy on loopback that forwards everything to `target` unchanged
 * and checks each JSON exchange on the way: the request body and the
 * response (by status). GET answers are checked where a contract covers
 * them (the backlog); the others (healthz, jwks, metrics) pass unchecked.
 */
export function conformanceProxy(checker: ConformanceChecker, target: string): ConformanceProxy {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const forward = new URL(url.pathname + url.search, target);
      const requestText = req.method === "GET" ? "" : await req.text();
      const headers = new Headers(req.headers);
      headers.delete("host");
      const res = await fetch(forward, {
        method: req.method,
        headers,
        ...(req.method === "GET" ? {} : { body: requestText }),
      });
      const responseText = await res.text();
      if (req.method === "POST") {
        count++;
        checker.checkHttpRequest({
          method: req.method,
          path: url.pathname,
          body: parseBody(requestText),
        });
      }
      if (req.method === "POST" || checker.hasGetContract(url.pathname)) {
        if (req.method !== "POST") count++;
        checker.checkHttpResponse({
          method: req.method,
          path: url.pathname,
          status: res.status,
          body: parseBody(responseText),
        });
      }
      const out = new Headers(res.headers);
      out.delete("content-encoding");
      out.delete("content-length");
      return new Response(responseText, { status: res.status, headers: out });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    exchanges: () => count,
    stop: () => server.stop(true),
  };
}
