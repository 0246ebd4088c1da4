/**
 * Quoting for the few statements that take no bound parameters (CREATE ROLE,
 * GRANT): PostgreSQL's own rules, as `quote_ident` and `quote_literal` apply them.
 */

/** A double-quoted identifier; `"` doubled. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A single-quoted literal; `'` doubled (standard_conforming_strings, the default since 9.1). */
export function literal(text: string): string {
  if (text.includes("\\"))
    throw new Error("a literal for a utility statement may not hold a backslash");
  return `'${text.replaceAll("'", "''")}'`;
}
