import type * as v from "valibot";

/**
 * valibot's default message ends "but received <the value>", and the value
 * may be a secret (a token, a key) or bytes of a batch. Passed as the
 * `message` of a parse, this keeps the rule and drops the value:
 * `Invalid length: expected >=16`. Messages a schema gives itself are kept
 * as they are (they never quote the value either).
 */
export function ruleOnly(issue: v.BaseIssue<unknown>): string {
  const head = issue.message.split(":")[0] ?? "Invalid";
  return issue.expected === null ? head : `${head}: expected ${issue.expected}`;
}
