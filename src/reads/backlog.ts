import * as v from "valibot";
import { BACKLOG_CAP, BacklogResponse } from "../contracts/http";
import type { Db } from "../db/connect";

/**
 * What `GET /internal/backlog` answers: the work still in the pipeline, in
 * one read-only statement (one snapshot). Each count stops at BACKLOG_CAP,
 * so the cost is bounded however large the tables grow, and each is served
 * by an index: `outbox_pending_idx` (partial, pending rows), `tasks_status_idx`.
 */
export async function backlogCounts(db: Db): Promise<BacklogResponse> {
  const [row] = await backlogQuery(db);
  return v.parse(BacklogResponse, row);
}

/** The statement itself, for EXPLAIN in tests. */
export function backlogQuery(db: Db) {
  return db`
    SELECT
      (SELECT count(*) FROM (SELECT 1 FROM state.outbox WHERE status = 'pending'
                             LIMIT ${BACKLOG_CAP}) o)::int AS outbox_pending,
      (SELECT count(*) FROM (SELECT 1 FROM state.tasks WHERE status = 'queued'
                             LIMIT ${BACKLOG_CAP}) q)::int AS tasks_queued,
      (SELECT count(*) FROM (SELECT 1 FROM state.tasks WHERE status = 'running'
                             LIMIT ${BACKLOG_CAP}) r)::int AS tasks_running`;
}
