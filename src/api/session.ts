import { randomBytes, timingSafeEqual } from "node:crypto";
import type { ApiRole } from "../config/schema.ts";

/**
 * Page sessions: a token typed once on the login form becomes a random session id in an HttpOnly,
 * SameSite=Strict cookie; the token itself is never stored. Each session has its own CSRF token,
 * carried by every form. Sessions live in this agent's memory: a restart asks for the token again.
 */

export const SESSION_COOKIE = "fleetcron_session";
const IDLE_MS = 8 * 3_600_000;
const MAX_SESSIONS = 1000;

export interface Flash {
  kind: "good" | "bad" | "info";
  text: string;
}

export interface Session {
  id: string;
  /** The token's name: the audit log's actor for this session's actions. */
  name: string;
  role: ApiRole;
  csrf: string;
  lastUsed: number;
  /** Said once on the next page, then forgotten (the result of the last action). */
  flash: Flash[];
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  create(name: string, role: ApiRole, now: number): Session {
    const session: Session = { id: randomBytes(32).toString("base64url"), name, role, csrf: randomBytes(24).toString("base64url"), lastUsed: now, flash: [] };
    this.sessions.set(session.id, session);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return session;
  }

  /** The session of the request's cookie, if it is live. */
  fromRequest(req: Request, now: number): Session | null {
    const id = cookieValue(req.headers.get("cookie"), SESSION_COOKIE);
    if (!id) return null;
    const session = this.sessions.get(id);
    if (!session) return null;
    if (now - session.lastUsed > IDLE_MS) {
      this.sessions.delete(id);
      return null;
    }
    session.lastUsed = now;
    return session;
  }

  end(session: Session): void {
    this.sessions.delete(session.id);
  }
}

export function cookieValue(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return null;
}

export function sessionCookie(session: Session): string {
  return `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${IDLE_MS / 1000}`;
}

export const CLEARED_COOKIE = `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;

/** Whether a form's CSRF field is this session's token (constant time). */
export function csrfMatches(session: Session, presented: string | null): boolean {
  if (!presented) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
