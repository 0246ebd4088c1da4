import type { Server } from "bun";
import {
  type Config,
  requireDataDatabase,
  requireStateDatabase,
  requireUiAuthToken,
} from "../config";
import { connect, type Sql } from "../db/connect";
import { createLogger } from "../log";
import { openQueue } from "../queue/open";
import { createUiApp } from "./app";
import { webAssets } from "./assets";
import { overviewSource, readOverview, shared } from "./overview";

/**
 * `harness ui`: the dashboard on its own small pools (it must not take
 * connections the dispatcher needs), every statement cut off after a few
 * seconds, the overview read at most once a second whoever asks.
 */

const POOL_SIZE = 4;
const STATEMENT_TIMEOUT_MS = 5_000;
const OVERVIEW_MAX_AGE_MS = 1_000;
/** The log message once the dashboard listens (tests wait on it). */
export const UI_LISTENING = "dashboard listening";

export interface RunningUi {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startUi(
  cfg: Config,
  o: { port?: number; hostname?: string } = {},
): Promise<RunningUi> {
  const token = requireUiAuthToken(cfg);
  const stateUrl = requireStateDatabase(cfg);
  const dataUrl = requireDataDatabase(cfg);
  const log = createLogger("ui");
  const queues = await openQueue(cfg, { name: "ui-queue", connections: 2 });
  const pool = (url: string, name: string): Sql =>
    connect(url, { name, max: POOL_SIZE, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  const state = pool(stateUrl, "ui");
  const data = dataUrl === stateUrl ? state : pool(dataUrl, "ui-data");
  const close = async () => {
    await queues.close();
    await state.end({ timeout: 5 });
    if (data !== state) await data.end({ timeout: 5 });
  };
  const admin = queues.admin();
  let server: Server<undefined>;
  try {
    const assets = await webAssets();
    const source = overviewSource({ state, data, admin });
    const overview = shared(() => readOverview(source), OVERVIEW_MAX_AGE_MS);
    const app = createUiApp({ state, data, admin, overview, token, assets, log });
    server = Bun.serve({
      port: o.port ?? cfg.ui.port,
      hostname: o.hostname ?? "127.0.0.1",
      fetch: (req, srv) => app.fetch(req, srv.requestIP(req)?.address ?? "unknown"),
    });
  } catch (cause) {
    await close();
    throw new Error(`starting the dashboard on port ${o.port ?? cfg.ui.port}`, { cause });
  }
  const port = server.port ?? cfg.ui.port;
  const url = `http://${server.hostname ?? "127.0.0.1"}:${port}`;
  log.info(UI_LISTENING, { url });
  return {
    port,
    url,
    async stop() {
      // At once: browsers keep idle connections open, and a dashboard's reads are not worth
      // waiting for (`harness up` stops every role before the embedded PostgreSQL).
      await server.stop(true);
      await close();
      log.info("dashboard stopped");
    },
  };
}
