import { afterAll } from "bun:test";
import { teardownTestServer } from "./db";
import { stopOwnedNats } from "./nats";
import { killAllRoles } from "./processes";
import { stopAllS3rvers } from "./s3rver";
import { removeTempDirs } from "./temp";

// Runs once per test run: no role process, s3rver, nats-server or embedded PostgreSQL
// outlives it, and no temporary folder made for the run. (bun test fires no process
// "exit" event: this is the one place for such clean-up.)
afterAll(async () => {
  await killAllRoles();
  await stopAllS3rvers();
  removeTempDirs();
  await stopOwnedNats();
  await teardownTestServer();
});
