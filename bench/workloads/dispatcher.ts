import { WRK_MISSING, wrkVersion } from "../lib/wrk";
import type { Detail, Subject, Workload } from "./types";

/**
 * Workload 4: the dispatcher under wrk on loopback (-t1, 50 connections,
 * 10 s; 3 s with --quick), heartbeats and claims, against a bare Bun.serve
 * endpoint doing the same single-row UPDATE with postgres.js and no auth
 * (bench/dispatcher/baseline.ts) — the ceiling of this stack.
 */

const CONNECTIONS = 50;
const common = {
  full: { seconds: 10, connections: CONNECTIONS },
  quick: { seconds: 3, connections: CONNECTIONS },
};
const details: Detail[] = [
  { key: "p50_ms", label: "p50", unit: "ms", digits: 1 },
  { key: "p99_ms", label: "p99", unit: "ms", digits: 1 },
];
const unavailable = () => (wrkVersion() === undefined ? WRK_MISSING : undefined);

const subject = (bare: 0 | 1, endpoint: 0 | 1, label: string): Subject => ({
  id: bare ? "bare" : "ours",
  label,
  script: "subjects/dispatcher.ts",
  database: "state",
  options: { bare, endpoint },
});

export const dispatcherHeartbeat: Workload = {
  id: "dispatcher-heartbeat",
  group: "dispatcher",
  title: `dispatcher heartbeat, wrk ${CONNECTIONS} connections`,
  unit: "req/s",
  items: "live leases",
  count: 2_000,
  quickCount: 2_000,
  common,
  details,
  unavailable,
  ours: subject(0, 0, "harness dispatcher (JWT check, fenced UPDATE)"),
  references: [
    {
      ...subject(1, 0, "bare Bun.serve + the same UPDATE, no auth"),
      target: 0.6,
    },
  ],
  // This machine cannot give even the bare endpoint an absolute 10 ms p99: a ratio to its p99, same rounds.
  checks: [
    {
      key: "p99_ms",
      label: "heartbeat p99 latency, over the bare endpoint's",
      unit: "ms",
      bound: "max",
      limit: 1.5,
      relativeTo: "bare",
    },
  ],
};

export const dispatcherClaim: Workload = {
  id: "dispatcher-claim",
  group: "dispatcher",
  title: `dispatcher claim, wrk ${CONNECTIONS} connections`,
  unit: "req/s",
  items: "queued tasks",
  count: 60_000,
  quickCount: 20_000,
  common,
  details,
  unavailable,
  ours: subject(0, 1, "harness dispatcher (bearer check, claim + attempts row, EdDSA capability)"),
  references: [
    {
      ...subject(1, 1, "bare Bun.serve + a single-row claim UPDATE, no auth, no token"),
      target: 0,
    },
  ],
};
