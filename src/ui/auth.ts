import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The dashboard's authentication: one shared login token (UI_AUTH_TOKEN),
 * compared in constant time; server-side sessions named by a random cookie;
 * and a CSRF token per session that every state-changing request must echo.
 */

export const SESSION_COOKIE = "harness_ui_session";
export const CSRF_HEADER = "x-csrf-token";
export const CSRF_FIELD = "csrf";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant-time equality, whatever the lengths (both sides are hashed first). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** A checker of the login token, holding only its digest. */
export function tokenChecker(expected: string): (given: string) => boolean {
  const want = digest(expected);
  return (given) => timingSafeEqual(digest(given), want);
}

export interface Session {
  id: string;
  csrf: string;
  expiresAt: number;
}

/** Sessions in memory: a restart logs everyone out. The oldest go first past `max`. */
export class Sessions {
  private readonly byId = new Map<string, Session>();
  constructor(
    private readonly o: { ttlMs: number; max: number; now?: () => number } = {
      ttlMs: 12 * 3_600_000,
      max: 1000,
    },
  ) {}

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  create(): Session {
    const s: Session = {
      id: randomBytes(32).toString("base64url"),
      csrf: randomBytes(32).toString("base64url"),
      expiresAt: this.now() + this.o.ttlMs,
    };
    this.byId.set(s.id, s);
    for (const oldest of this.byId.keys()) {
      if (this.byId.size <= this.o.max) break;
      this.byId.delete(oldest);
    }
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = this.byId.get(id);
    if (s === undefined) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string): void {
    this.byId.delete(id);
  }

  get ttlMs(): number {
    return this.o.ttlMs;
  }
}

/** The value of one cookie of the request, if it has it. */
export function cookieOf(req: Request, name: string): string | undefined {
  const header = req.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const isHttps = (req: Request) => new URL(req.url).protocol === "https:";

export function sessionCookie(req: Request, s: Session, ttlMs: number): string {
  const secure = isHttps(req) ? "; Secure" : "";
  return `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(ttlMs / 1000)}${secure}`;
}

export function clearedCookie(req: Request): string {
  const secure = isHttps(req) ? "; Secure" : "";
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure}`;
}

/** A cross-site form post carries another Origin; a same-origin one ours (the Host it was sent to), or none. */
export function sameOrigin(req: Request): boolean {
  const origin = req.headers.get("origin");
  if (origin === null) return true;
  try {
    return new URL(origin).host === (req.headers.get("host") ?? new URL(req.url).host);
  } catch {
    return false;
  }
}
