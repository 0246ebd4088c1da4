import * as v from "valibot";
import { HeartbeatRequest } from "../../src/contracts/http";
import { connect } from "../../src/db/connect";

/**
 * The yardstick for the heartbeat benchmark: a bare Bun.serve endpoint that
 * parses the same body and runs the same single-row fenced UPDATE through the
 * same pool settings, with no token, no metrics, no routing layer.
 *   DATABASE_URL=… PORT=… bun bench/dispatcher/baseline.ts
 */
const sql = connect(process.env.DATABASE_URL ?? "", { name: "bench-baseline", max: 16 });
const leaseMs = 600_000;

Bun.serve({
  port: Number(process.env.PORT ?? 18099),
  routes: {
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
  },
});
