/**
 * Run by proxy.test.ts as a process of its own, as a role would run: 8
 * loops of queries on one pool behind a fault proxy while it resets every
 * connection 15 times; prints `{ ok, failed, resets }` once every query
 * settled, or exits 1 when the queries stop flowing. Like every role
 * (src/cli.ts) it drops connection errors postgres.js leaves unawaited.
 */
import "../../src/db/dangling";
import { connect } from "../../src/db/connect";
import { FaultProxy } from "../../src/verify/proxy";
import { waitFor } from "../support/wait";

const url = new URL(process.argv[2] ?? "");
const proxy = new FaultProxy("storm", { host: url.hostname, port: Number(url.port || 5432) });
url.hostname = "127.0.0.1";
url.port = String(proxy.port);
const sql = connect(url.toString(), { name: "test-reset-storm", max: 6 });
let stop = false;
let ok = 0;
let failed = 0;
const loops = Array.from({ length: 8 }, async () => {
  while (!stop) {
    await sql`SELECT pg_sleep(0.005)`.then(
      () => ok++,
      () => failed++,
    );
  }
});
try {
  for (let round = 0; round < 15; round++) {
    const before = ok;
    await waitFor(() => ok >= before + 20, {
      what: `queries after reset ${round}`,
      timeoutMs: 10_000,
    });
    proxy.reset(round % 3 === 0 ? 200 : 0);
  }
  stop = true;
  let settled = false;
  void Promise.all(loops).then(() => {
    settled = true;
  });
  await waitFor(() => settled, { what: "every query to settle", timeoutMs: 10_000 });
  await sql.end();
  proxy.stop();
  process.stdout.write(`${JSON.stringify({ ok, failed, resets: proxy.resets })}\n`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
