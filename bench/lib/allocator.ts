import { PURGE_DELAY_ENV, PURGE_NEVER } from "../../src/platform/allocator";

/**
 * Every Bun process the bench starts, ours and the references alike, runs
 * with the allocator setting harness's roles give themselves
 * (src/platform/allocator.ts), or the one the bench was started with: the
 * figures compare code, not a runtime setting anyone can make.
 */
export const ALLOCATOR_ENV: Record<string, string> = {
  [PURGE_DELAY_ENV]: process.env[PURGE_DELAY_ENV] ?? PURGE_NEVER,
};
