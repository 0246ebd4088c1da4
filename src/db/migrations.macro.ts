import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A Bun macro: runs at bundle time (`bun build --compile`, `bun run`, `bun test`)
 * and inlines the drizzle-kit migrations as data, so the compiled binary needs
 * no `drizzle/` folder beside it.
 */

export interface EmbeddedMigration {
  tag: string;
  when: number;
  hash: string;
  statements: string[];
}

export function embeddedMigrations(folder: "state" | "data"): EmbeddedMigration[] {
  const root = join(import.meta.dir, "..", "..", "drizzle", folder);
  const journal: unknown = JSON.parse(readFileSync(join(root, "meta", "_journal.json"), "utf8"));
  if (typeof journal !== "object" || journal === null || !("entries" in journal)) {
    throw new Error(`drizzle/${folder}/meta/_journal.json has no entries`);
  }
  const entries = Array.isArray(journal.entries) ? journal.entries : [];
  return entries.map((entry: { tag: string; when: number }) => {
    const text = readFileSync(join(root, `${entry.tag}.sql`), "utf8");
    return {
      tag: entry.tag,
      when: entry.when,
      hash: createHash("sha256").update(text).digest("hex"),
      statements: text
        .split("--> statement-breakpoint")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    };
  });
}
