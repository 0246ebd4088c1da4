import type { Db } from "../db/connect";
import type { QueueAdmin } from "../queue/seam";
import { alertRowsCapped, outboxPendingCapped, taskCountsCapped } from "../reads/counts";
import { rolesConnected } from "../reads/roles";
import { depthView } from "../reads/status";
import { dbNow, rowsIngestedBuckets, tasksFinishedBuckets } from "../reads/throughput";
import type { Overview } from "./contract";
import { SealedSeries, type SeriesOptions } from "./throughput";

/**
 * The overview: task counts, queue depths, outbox backlog, rows, the
 * throughput of the last 15 minutes and the roles connected. However many
 * browsers poll it, it is read at most once per `maxAgeMs` (one read in
 * flight, its answer shared), and each read is bounded: counts are capped,
 * and the chart reads only its open buckets and one chunk of old ones.
 */

export const THROUGHPUT: SeriesOptions = {
  bucketSeconds: 10,
  windowSeconds: 15 * 60,
  // A finish commits within seconds: buckets older than this are final.
  sealAfterSeconds: 20,
  chunkSeconds: 60,
};

export interface OverviewSource {
  state: Db;
  data: Db;
  admin: QueueAdmin;
  finished: SealedSeries;
  ingested: SealedSeries;
}

export function overviewSource(p: { state: Db; data: Db; admin: QueueAdmin }): OverviewSource {
  return {
    ...p,
    finished: new SealedSeries((r) => tasksFinishedBuckets(p.state, r), THROUGHPUT),
    ingested: new SealedSeries((r) => rowsIngestedBuckets(p.data, r), THROUGHPUT),
  };
}

export async function readOverview(s: OverviewSource): Promise<Overview> {
  const stateNow = dbNow(s.state);
  const dataNow = s.data === s.state ? stateNow : dbNow(s.data);
  const [tasks, queues, pending, rows, finished, ingested, roles] = await Promise.all([
    taskCountsCapped(s.state),
    s.admin.depths(),
    outboxPendingCapped(s.state),
    alertRowsCapped(s.data),
    stateNow.then((now) => s.finished.series(now)),
    dataNow.then((now) => s.ingested.series(now)),
    rolesConnected(s.state),
  ]);
  return {
    at: new Date().toISOString(),
    tasks,
    queues: queues.map(depthView),
    outbox: { pending },
    alerts: { rows },
    throughput: { bucket_seconds: THROUGHPUT.bucketSeconds, finished, rows: ingested },
    roles,
  };
}

/** `read`, shared: a call within `maxAgeMs` of the last answer (or during a read) gets that one. */
export function shared<T>(read: () => Promise<T>, maxAgeMs: number): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (last === undefined || now - last.at >= maxAgeMs) {
      const value = read();
      const entry = { at: now, value };
      last = entry;
      // A failed read is not kept: the next call tries again.
      value.catch(() => {
        if (last === entry) last = undefined;
      });
    }
    return last.value;
  };
}
