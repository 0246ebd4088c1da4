/**
 * Claims N tasks through the dispatcher and writes one line per claim,
 * "<body>\t<capability token>", for heartbeat.lua to rotate through.
 *   DISPATCHER_URL=… INTERNAL_AUTH_TOKEN=… DATABASE_URL=… bun prepare-heartbeats.ts N OUT
 */
import { writeFileSync } from "node:fs";
import * as v from "valibot";
import { ClaimResponse } from "../../src/contracts/http";
import { connect } from "../../src/db/connect";

const n = Number(process.argv[2] ?? 1000);
const out = process.argv[3] ?? "/tmp/heartbeats.tsv";
const sql = connect(process.env.DATABASE_URL ?? "", { name: "bench-prepare", max: 2 });
const rows = await sql`SELECT id::text AS id FROM state.tasks WHERE status = 'queued' LIMIT ${n}`;
await sql.end();
const lines: string[] = [];
for (const { id } of rows) {
  const res = await fetch(`${process.env.DISPATCHER_URL}/internal/task-claim`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.INTERNAL_AUTH_TOKEN}` },
    body: JSON.stringify({ task_id: id }),
  });
  const raw: unknown = await res.json();
  if (res.status !== 200) {
    process.stderr.write(`claim ${id}: ${res.status} ${JSON.stringify(raw)}\n`);
    continue;
  }
  const c = v.parse(ClaimResponse, raw);
  const body = JSON.stringify({
    task_id: c.task_id,
    attempt: c.attempt,
    lease_token: c.lease_token,
  });
  lines.push(`${body}\t${c.capability_token}`);
}
writeFileSync(out, `${lines.join("\n")}\n`);
