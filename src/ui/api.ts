import * as v from "valibot";
import type { Db } from "../db/connect";
import type { QueueAdmin } from "../queue/seam";
import { TASK_FILTERS, type TaskCursor, taskPage } from "../reads/tasks";
import { type Overview, RedriveRequest, type TaskList } from "./contract";
import { dlqView, redriveLetters } from "./dlq";
import { readTaskDetail, taskItem } from "./task-detail";

/**
 * The JSON API behind the pages. Each handler parses its input with
 * valibot, calls one read (or the redrive) and answers; the session and
 * CSRF checks happen before (./app.ts).
 */

export interface ApiDeps {
  state: Db;
  data: Db;
  admin: QueueAdmin;
  overview: () => Promise<Overview>;
}

export const json = (status: number, body: unknown): Response => Response.json(body, { status });
export const problem = (status: number, error: string, message: string): Response =>
  json(status, { error, message });

const Uuid = v.pipe(v.string(), v.uuid());
/** `created_at` as PostgreSQL prints a timestamptz, and the id: where the next page starts. */
const PgTimestamp = v.pipe(
  v.string(),
  v.regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/),
);
const Cursor = v.tuple([PgTimestamp, Uuid]);

function encodeCursor(c: TaskCursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id])).toString("base64url");
}

function decodeCursor(text: string): TaskCursor | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    const r = v.safeParse(Cursor, parsed);
    return r.success ? { at: r.output[0], id: r.output[1] } : null;
  } catch {
    return null;
  }
}

const TaskQuery = v.object({
  status: v.optional(v.picklist(TASK_FILTERS)),
  org: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(200))),
  q: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-fA-F-]{1,36}$/, "hex digits of a task id"))),
  after: v.optional(v.pipe(v.string(), v.maxLength(400))),
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number), v.minValue(1), v.maxValue(200)),
    "50",
  ),
});

export async function getTasks(d: ApiDeps, url: URL): Promise<Response> {
  const raw = Object.fromEntries(
    [...url.searchParams].filter(([, value]) => value.trim() !== "").map(([k, x]) => [k, x.trim()]),
  );
  const q = v.safeParse(TaskQuery, raw);
  if (!q.success) return problem(400, "invalid_query", v.summarize(q.issues));
  const after = q.output.after === undefined ? undefined : decodeCursor(q.output.after);
  if (after === null) return problem(400, "invalid_query", "after: not a cursor of this list");
  const page = await taskPage(d.state, {
    limit: q.output.limit,
    ...(q.output.status === undefined ? {} : { filter: q.output.status }),
    ...(q.output.org === undefined ? {} : { orgId: q.output.org }),
    ...(q.output.q === undefined ? {} : { idPrefix: q.output.q }),
    ...(after === undefined ? {} : { after }),
  });
  const body: TaskList = {
    at: new Date().toISOString(),
    tasks: page.rows.map(taskItem),
    next: page.next === null ? null : encodeCursor(page.next),
  };
  return json(200, body);
}

export async function getTask(d: ApiDeps, id: string): Promise<Response> {
  if (!v.is(Uuid, id)) return problem(404, "not_found", "no such task");
  const detail = await readTaskDetail(d, id);
  return detail === null ? problem(404, "not_found", "no such task") : json(200, detail);
}

export async function getOverview(d: ApiDeps): Promise<Response> {
  return json(200, await d.overview());
}

export async function getDlq(d: ApiDeps): Promise<Response> {
  return json(200, await dlqView(d.admin, () => new Date()));
}

export async function postRedrive(d: ApiDeps, req: Request): Promise<Response> {
  let raw: unknown;
  try {
    raw = await req.json();
  } catch {
    return problem(400, "malformed_json", "the body is not valid JSON");
  }
  const r = v.safeParse(RedriveRequest, raw);
  if (!r.success) return problem(400, "invalid_body", v.summarize(r.issues));
  if (r.output.id === undefined && r.output.reason === undefined) {
    return problem(400, "invalid_body", "give the letter's id or the group's reason");
  }
  const moved = await redriveLetters(d.admin, r.output);
  return json(200, { moved });
}
