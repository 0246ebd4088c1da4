import { config } from "../config";
import { startDispatcher } from "../dispatcher/server";
import { createLogger } from "../log";
import { warnExcessPrivilege } from "../users/excess";
import { harnessCommand, intFlag } from "./_command";
import { stopOnSignal } from "./_until-signal";

export default harnessCommand({
  name: "dispatcher",
  description:
    "Serve the task API (claims, leases, capability tokens), drain the outbox, reap leases",
  args: {
    port: { type: "string", description: "port to listen on (env PORT, default 8080)" },
  },
  checks: { databases: ["state"], schema: true, oneShot: false },
  async run({ args }) {
    const cfg = config();
    const port = args.port === undefined ? cfg.port : intFlag("port", args.port, 1, 65_535);
    await warnExcessPrivilege("dispatcher", cfg, process.env, createLogger("dispatcher"));
    const running = await startDispatcher(cfg, port);
    await stopOnSignal("dispatcher", running);
  },
});
