/**
 * OAuth2 client credentials (README, "OAuth2 client credentials"): a token is fetched from the
 * job's `token_url`, kept per agent (one cache per process) until shortly before `expires_in`,
 * and shared by every run that uses the same endpoint, client and scope. Concurrent runs wait for
 * one fetch instead of each asking the endpoint. A token endpoint's failure is described by its
 * status and its OAuth `error` code only: its body may echo the client secret.
 */
import { createHash } from "node:crypto";
import type { OAuth2ClientCredentials } from "../jobs/types.ts";
import { sendRequest, type HttpRequest, type SendOptions } from "./http.ts";

/** A token is renewed this long before the endpoint said it expires (at most a tenth of its life). */
const EXPIRY_MARGIN_MS = 30_000;
/** Token endpoints answer quickly or not at all. */
const TOKEN_TIMEOUT_MS = 15_000;

export type RenderedAuth = Omit<OAuth2ClientCredentials, "type">;

export type TokenResult = { ok: true; token: string; fetched: boolean } | { ok: false; error: string };

interface Entry {
  token: string;
  /** ms since epoch; Infinity when the endpoint gave no expires_in (kept until a 401). */
  expiresAt: number;
}

export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<TokenResult>>();
  /** Token endpoint requests made, for tests and metrics. */
  fetches = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A cached token, or a new one; `stale` is the token a 401 refused (dropped unless already replaced). */
  async token(auth: RenderedAuth, send: Pick<SendOptions, "runId" | "userAgent" | "signal" | "fetch">, stale?: string): Promise<TokenResult> {
    const key = cacheKey(auth);
    const cached = this.entries.get(key);
    if (cached && stale !== undefined && cached.token === stale) this.entries.delete(key);
    const fresh = this.entries.get(key);
    if (fresh && fresh.expiresAt > this.now()) return { ok: true, token: fresh.token, fetched: false };
    let inFlight = this.pending.get(key);
    if (!inFlight) {
      inFlight = this.fetchToken(key, auth, send).finally(() => this.pending.delete(key));
      this.pending.set(key, inFlight);
    }
    return inFlight;
  }

  private async fetchToken(key: string, auth: RenderedAuth, send: Pick<SendOptions, "runId" | "userAgent" | "signal" | "fetch">): Promise<TokenResult> {
    this.fetches++;
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (auth.scope) form.set("scope", auth.scope);
    if (auth.audience) form.set("audience", auth.audience);
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
    if (auth.client_auth === "basic") {
      // RFC 6749 §2.3.1: each part form-encoded before base64.
      headers.Authorization = `Basic ${Buffer.from(`${formEncode(auth.client_id)}:${formEncode(auth.client_secret)}`).toString("base64")}`;
    } else {
      form.set("client_id", auth.client_id);
      form.set("client_secret", auth.client_secret);
    }
    const req: HttpRequest = { method: "POST", url: auth.token_url, headers, body: form.toString(), timeoutMs: TOKEN_TIMEOUT_MS, expectStatus: [] };
    const answer = await sendRequest(req, { ...send, runId: send.runId });
    const where = `token endpoint ${safeUrl(auth.token_url)}`;
    if (answer.status === null) return { ok: false, error: `${where}: no token (${answer.failure}${answer.failure === "timeout" ? ` after ${TOKEN_TIMEOUT_MS / 1000} s` : ""})` };
    let json: Record<string, unknown> | null = null;
    try {
      const parsed: unknown = JSON.parse(answer.body);
      if (parsed !== null && typeof parsed === "object") json = parsed as Record<string, unknown>;
    } catch {
      // reported below
    }
    if (!answer.ok) {
      const code = typeof json?.error === "string" && /^[\w.-]{1,64}$/.test(json.error) ? ` (error "${json.error}")` : "";
      return { ok: false, error: `${where} answered HTTP ${answer.status}${code}` };
    }
    const token = json?.access_token;
    if (typeof token !== "string" || token === "") return { ok: false, error: `${where} answered HTTP ${answer.status} without an access_token` };
    const lifeMs = typeof json?.expires_in === "number" && json.expires_in > 0 ? json.expires_in * 1000 : Infinity;
    const expiresAt = this.now() + lifeMs - Math.min(EXPIRY_MARGIN_MS, lifeMs / 10);
    this.entries.set(key, { token, expiresAt });
    return { ok: true, token, fetched: true };
  }
}

/** One cache per process: an agent's runs share tokens. */
export const agentTokens = new TokenCache();

function cacheKey(auth: RenderedAuth): string {
  // Hashed: the key holds the client secret, and a Map key is easy to dump by accident.
  return createHash("sha256").update(JSON.stringify([auth.token_url, auth.client_id, auth.client_secret, auth.scope ?? "", auth.audience ?? "", auth.client_auth])).digest("hex");
}

function formEncode(text: string): string {
  return encodeURIComponent(text).replace(/%20/g, "+");
}

function safeUrl(raw: string): string {
  try {
    const url = new URL(raw);
    url.username = "";
    url.password = "";
    url.search = "";
    return url.href;
  } catch {
    return "(invalid URL)";
  }
}
