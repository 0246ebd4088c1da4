import type { Sql } from "../../db/connect";

/** The SQL of `state.signing_keys`: keys generated when none is configured. */

const LOCK_KEY = 72_617_101;

/**
 * Stores `privateJwk` only when no key exists yet. The advisory lock is
 * taken before the check, in its own statement, so two dispatchers starting
 * at once end with one key between them.
 */
export async function signingKeyInsertFirst(
  sql: Sql,
  p: { kid: string; privateJwk: object },
): Promise<boolean> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${LOCK_KEY})`;
    const rows = await tx`
      INSERT INTO state.signing_keys (kid, private_jwk)
      SELECT ${p.kid}, ${JSON.stringify(p.privateJwk)}::text::jsonb
      WHERE NOT EXISTS (SELECT 1 FROM state.signing_keys)
      RETURNING kid`;
    return rows.length === 1;
  });
}

/** Every stored private JWK, newest first (the newest signs). */
export async function signingKeyList(db: Sql): Promise<unknown[]> {
  const rows = await db`SELECT private_jwk FROM state.signing_keys ORDER BY created_at DESC, kid`;
  return rows.map((r) => r.private_jwk);
}
