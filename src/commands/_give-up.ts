import { intFlag, UsageError } from "./_command";

/** `--give-up-ms`, shared by the `--until-idle` roles (worker, sink). */

export const DEFAULT_GIVE_UP_MS = 30_000;

export const giveUpArg = {
  type: "string",
  description: `with --until-idle: exit 1 once the database, the dispatcher or the schema stayed unavailable this long (default ${DEFAULT_GIVE_UP_MS}; a missing schema is named at once)`,
} as const;

/** The limit in ms; refused without `--until-idle` (a long-running role never gives up). */
export function giveUpFlag(value: unknown, untilIdle: boolean): number {
  if (value === undefined) return DEFAULT_GIVE_UP_MS;
  if (!untilIdle) throw new UsageError("--give-up-ms applies only with --until-idle");
  return intFlag("give-up-ms", value, 0, 86_400_000);
}
