import { config } from "../config";
import { startUi } from "../ui/server";
import { harnessCommand, intFlag } from "./_command";
import { stopOnSignal } from "./_until-signal";

export default harnessCommand({
  name: "ui",
  description:
    "The web dashboard: tasks, attempts and their fencing, queues, dead letters (login with UI_AUTH_TOKEN)",
  checks: { databases: ["state", "data", "queue"], schema: true, oneShot: false },
  args: {
    port: { type: "string", description: "port to listen on (env UI_PORT, default 8090)" },
    host: {
      type: "string",
      description: "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
      default: "127.0.0.1",
    },
  },
  async run({ args }) {
    const cfg = config();
    const port = args.port === undefined ? cfg.ui.port : intFlag("port", args.port, 1, 65_535);
    const running = await startUi(cfg, { port, hostname: String(args.host) });
    process.stdout.write(`harness ui: dashboard on ${running.url}\n`);
    await stopOnSignal("ui", running);
  },
});
