import { afterAll } from "bun:test";
import { teardownTestServer } from "./db";
import { killAllRoles } from "./processes";

// Runs once per test run: no role process and no embedded PostgreSQL outlives it.
afterAll(async () => {
  await killAllRoles();
  await teardownTestServer();
});
