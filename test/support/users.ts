import { userRemove } from "../../src/users/provision";
import { testServer } from "./db";

/**
 * Drops users a test made, through the test server's admin URL: roles are
 * cluster-wide and outlive the test's databases, which may be dropped first.
 */
export async function removeUsers(names: Iterable<string>): Promise<void> {
  const { admin } = await testServer();
  for (const name of names) await userRemove({ state: admin, data: admin }, name).catch(() => {});
}
