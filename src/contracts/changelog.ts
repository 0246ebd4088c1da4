import type { ContractIndex } from "./registry";

/**
 * `contracts/CHANGELOG.md` names every version of every contract with the
 * fingerprint of its exported schema:
 *
 *   - `claim_response` v2 (sha256:0123456789abcdef): breaks clients: …
 *
 * A schema whose fingerprint differs from its version's line changed without
 * a version bump; a version with no line has not been explained.
 */

const LINE = /`([a-z][a-z0-9_]*)` v(\d+) \((sha256:[0-9a-f]{16})\)/g;

export function changelogEntries(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const m of text.matchAll(LINE)) entries.set(`${m[1]} v${m[2]}`, m[3] ?? "");
  return entries;
}

/** Problems, one sentence each; empty when every contract's current version is recorded. */
export function checkChangelog(index: ContractIndex, text: string): string[] {
  const entries = changelogEntries(text);
  const problems: string[] = [];
  for (const c of index.contracts) {
    const key = `${c.name} v${c.version}`;
    const recorded = entries.get(key);
    if (recorded === undefined) {
      problems.push(
        `${key} is not in contracts/CHANGELOG.md: add "- \`${c.name}\` v${c.version} (${c.fingerprint}): <what changed; whether it breaks clients and why>"`,
      );
    } else if (recorded !== c.fingerprint) {
      problems.push(
        `${c.name} changed (${c.fingerprint}) but its version is still ${c.version} (${recorded} in CHANGELOG.md): bump its version in src/contracts/registry.ts, re-export, and add a CHANGELOG line`,
      );
    }
  }
  return problems;
}
