import * as v from "valibot";
import { ClaimRequest, HeartbeatRequest } from "../../src/contracts/http";
import { connect } from "../../src/db/connect";

/**
 * The yardstick of the dispatcher workloads: a bare Bun.serve endpoint that
 * parses the same bodies and runs the same single-row UPDATE through a pool
 * of the dispatcher's size (16), with no token, no metrics, no routing layer,
 * no capability signing and no attempts row.
 *   DATABASE_URL=… PORT=… bun bench/dispatcher/baseline.ts
 */
const sql = connect(process.env.DATABASE_URL ?? "", { name: "bench-baseline", max: 16 });
const leaseMs = 600_000;

const server = Bun.serve({
  port: Number(process.env.PORT ?? 18099),
  routes: {
    "/healthz": { GET: () => Response.json({ status: "ok" }) },
    "/v1/task/heartbeat": {
      POST: async (req) => {
        const b = v.parse(HeartbeatRequest, await req.json());
        const rows = await sql`
          UPDATE state.tasks SET lease_expires_at = now() + make_interval(secs => ${leaseMs}::double precision / 1000), updated_at = now()
          WHERE id = ${b.task_id} AND attempt = ${b.attempt} AND lease_token = ${b.lease_token}
            AND status = 'running' AND lease_expires_at > now()
          RETURNING lease_expires_at`;
        const at = rows[0]?.lease_expires_at;
        if (!(at instanceof Date)) return Response.json({ error: "stale_lease" }, { status: 409 });
        return Response.json({ lease_expires_at: at.toISOString() });
      },
    },
    "/internal/task-claim": {
      POST: async (req) => {
        const b = v.parse(ClaimRequest, await req.json());
        const rows = await sql`
          UPDATE state.tasks
          SET status = 'running', attempt = attempt + 1, lease_token = gen_random_uuid(),
              lease_expires_at = now() + make_interval(secs => ${leaseMs}::double precision / 1000), updated_at = now()
          WHERE id = ${b.task_id} AND status = 'queued'
          RETURNING attempt, lease_token::text AS lease_token, lease_expires_at, payload`;
        const r = rows[0];
        if (r === undefined) return Response.json({ error: "lease_active" }, { status: 409 });
        return Response.json({ task_id: b.task_id, ...r });
      },
    },
  },
});
process.on("SIGTERM", () => {
  void server
    .stop()
    .then(() => sql.end({ timeout: 1 }))
    .then(() => process.exit(0));
});
