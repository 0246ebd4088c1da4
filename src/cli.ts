#!/usr/bin/env bun
import { tuneAllocator } from "./platform/allocator";

// Before the rest loads: a role may execute itself again, tuned (src/platform/allocator.ts).
tuneAllocator(process.argv.slice(2));
import("./main").catch((err: unknown) => {
  process.stderr.write(
    `harness: could not start: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
  process.exit(1);
});
