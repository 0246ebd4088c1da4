import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";

/**
 * A SCRAM-SHA-256 verifier for `CREATE ROLE … PASSWORD '<verifier>'` (RFC
 * 5802 / 7677, PostgreSQL's stored format), so a new user's password never
 * reaches the server in clear text, nor its statement log. The password
 * must be ASCII (SASLprep then changes nothing): ours are base64url.
 */
const ITERATIONS = 4096;

export function scramVerifier(password: string, salt = randomBytes(16)): string {
  if (!/^[\x21-\x7e]+$/.test(password)) throw new Error("the password must be printable ASCII");
  const salted = pbkdf2Sync(password, salt, ITERATIONS, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** A new random password: 24 bytes, base64url (URL-safe, no quoting needed anywhere). */
export function newPassword(): string {
  return randomBytes(24).toString("base64url");
}
