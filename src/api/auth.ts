import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiRole } from "../config/schema.ts";
import type { ApiToken } from "../config/load.ts";

/**
 * Bearer tokens for the HTTP API and the page (config `api_tokens`). Roles are ordered: read <
 * operate < admin. Tokens are compared as SHA-256 digests in constant time, against every
 * configured token, so neither the answer's timing nor its path says how much of a guess was right.
 */

const RANK: Record<ApiRole, number> = { read: 0, operate: 1, admin: 2 };

export function roleAllows(have: ApiRole, need: ApiRole): boolean {
  return RANK[have] >= RANK[need];
}

export interface Principal {
  /** The token's name in the config: what the audit log records as the actor. */
  name: string;
  role: ApiRole;
}

export class TokenSet {
  private readonly tokens: { name: string; role: ApiRole; digest: Buffer }[];

  constructor(tokens: readonly ApiToken[]) {
    this.tokens = tokens.map((t) => ({ name: t.name, role: t.role, digest: Buffer.from(t.sha256, "hex") }));
  }

  get configured(): boolean {
    return this.tokens.length > 0;
  }

  /** The token's owner, or null. Every configured token is compared, whatever matched first. */
  verify(presented: string): Principal | null {
    const digest = createHash("sha256").update(presented).digest();
    let found: Principal | null = null;
    for (const token of this.tokens) {
      if (timingSafeEqual(digest, token.digest) && found === null) found = { name: token.name, role: token.role };
    }
    return found;
  }
}

/** `Authorization: Bearer <token>` → the token, or null. */
export function bearerToken(header: string | null): string | null {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match ? match[1]! : null;
}

export interface ThrottleOptions {
  /** Failures from one address before answers slow down. */
  freeFailures?: number;
  /** First delay once slowed; doubles per further failure up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures are forgotten this long after the last one. */
  forgetAfterMs?: number;
  /** Addresses remembered at most (the oldest is forgotten first). */
  maxAddresses?: number;
}

/**
 * Slows down guessing: after a few failed tokens from one address, every further attempt from it
 * waits before it is checked (doubling per failure, capped), until it stays quiet for a while. A
 * right token answers at once again only after the wait, so a guesser gains nothing by racing.
 */
export class FailureThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();
  private readonly free: number;
  private readonly base: number;
  private readonly max: number;
  private readonly forget: number;
  private readonly maxAddresses: number;

  constructor(options: ThrottleOptions = {}) {
    this.free = options.freeFailures ?? 5;
    this.base = options.baseDelayMs ?? 250;
    this.max = options.maxDelayMs ?? 5000;
    this.forget = options.forgetAfterMs ?? 15 * 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
  }

  /** How long an attempt from `address` waits before its token is checked. */
  delayFor(address: string, now: number): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    if (now - entry.last > this.forget) {
      this.failures.delete(address);
      return 0;
    }
    const over = entry.count - this.free;
    return over < 0 ? 0 : Math.min(this.max, this.base * 2 ** over);
  }

  fail(address: string, now: number): void {
    const entry = this.failures.get(address);
    this.failures.delete(address);
    this.failures.set(address, { count: (entry && now - entry.last <= this.forget ? entry.count : 0) + 1, last: now });
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }
}
