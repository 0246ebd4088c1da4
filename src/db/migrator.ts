import { config, requireDataDatabase, requireStateDatabase } from "../config";
import { connect, describeUrl } from "./connect";
import { type MigrationSet, migrateDatabase } from "./migrate";

export interface MigrationReport {
  set: MigrationSet;
  database: string;
  applied: string[];
}

/** Migrates the state and data databases (the same URL for both works). */
export async function migrateAll(urls?: {
  state: string;
  data: string;
}): Promise<MigrationReport[]> {
  const cfg = config();
  const targets: Array<[MigrationSet, string]> = [
    ["state", urls?.state ?? requireStateDatabase(cfg)],
    ["data", urls?.data ?? requireDataDatabase(cfg)],
  ];
  const reports: MigrationReport[] = [];
  for (const [set, url] of targets) {
    const sql = connect(url, { name: "migrate", max: 1 });
    try {
      const applied = await migrateDatabase(sql, set);
      reports.push({ set, database: describeUrl(url), applied });
    } catch (cause) {
      throw new Error(`migrating the ${set} database at ${describeUrl(url)}`, { cause });
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  return reports;
}
