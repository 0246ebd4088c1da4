import { afterAll } from "bun:test";
import { teardownTestServer } from "./db";
import { stopOwnedNats } from "./nats";
import { killAllRoles } from "./processes";

// Runs once per test run: no role process, nats-server or embedded PostgreSQL outlives it.
afterAll(async () => {
  await killAllRoles();
  await stopOwnedNats();
  await teardownTestServer();
});
