/**
 * One HTTP attempt with Bun's fetch. Never throws: every way an attempt can end (an answer, a
 * timeout, a refused connection, a redirect loop, an abort) comes back as an `HttpAttempt`, so the
 * retry loop has one shape to judge. Error texts here are NOT redacted; the caller owns the secrets.
 */

import { SIGNATURE_HEADER, signatureHeader, type SigningKey } from "./signing.ts";

/** How much of a response body is kept for the record and for later steps' templates. */
export const DEFAULT_RESPONSE_CAP_BYTES = 64 * 1024;

export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** A string is sent as is; anything else but null/undefined is sent as JSON. */
  body?: unknown;
  /** Covers the whole attempt, headers and body: a body that never ends fails at this deadline. */
  timeoutMs: number;
  /** Statuses that count as success; empty = any 2xx. */
  expectStatus: number[];
  /** Default "same-origin" (README, "Redirects"). */
  followRedirects?: FollowRedirects;
  /**
   * Lowercased names of headers whose values came from secrets (or from a login step): dropped on a
   * cross-origin hop with `any`. `Authorization` and `Cookie` are always dropped there.
   */
  sensitiveHeaders?: string[];
}

export type FollowRedirects = "same-origin" | "any" | "none";
const MAX_REDIRECTS = 20;

export interface SendOptions {
  /** Sent as `Idempotency-Key` and `X-FleetCron-Run-Id`, so a receiver can drop a repeat. */
  runId: string;
  userAgent: string;
  /** Aborts the attempt from outside (lease lost, hard shutdown). */
  signal?: AbortSignal;
  fetch?: typeof fetch;
  responseCapBytes?: number;
  /** Signs every hop with `FleetCron-Signature` (src/executor/signing.ts). */
  signingKey?: SigningKey;
  /**
   * Asked before each redirect hop is sent: a reason not to send it (a secret bound to other
   * hosts would go with it), or null.
   */
  checkHop?: (hop: { url: string; headers: Record<string, string>; body: string }) => string | null;
}

/**
 * - `status`: the answer did not match expect_status.
 * - `request`: the request could not be built (bad URL, header, body on GET); sending it again
 *   cannot help.
 * - `redirect`: a redirect loop or too many redirects.
 */
export type AttemptFailure = "status" | "timeout" | "aborted" | "network" | "redirect" | "request";

export interface HttpAttempt {
  ok: boolean;
  /** null when no answer arrived. */
  status: number | null;
  /** Decoded body, at most the cap in bytes (a multi-byte character cut by the cap is dropped). */
  body: string;
  truncated: boolean;
  retryAfter: string | null;
  durationMs: number;
  failure?: AttemptFailure;
  /** One line per redirect followed, saying which headers were dropped on a cross-origin hop. */
  redirects?: string[];
  /** What went wrong, with method and URL (userinfo password hidden), not redacted. */
  error?: string;
}

export function isExpectedStatus(status: number, expect: number[]): boolean {
  return expect.length === 0 ? status >= 200 && status < 300 : expect.includes(status);
}

export async function sendRequest(req: HttpRequest, opts: SendOptions): Promise<HttpAttempt> {
  const started = performance.now();
  const method = req.method.toUpperCase();
  const where = `${method} ${displayUrl(req.url)}`;
  const fail = (failure: AttemptFailure, error: string, partial?: Partial<HttpAttempt>): HttpAttempt => ({
    ok: false,
    status: null,
    body: "",
    truncated: false,
    retryAfter: null,
    ...partial,
    durationMs: performance.now() - started,
    failure,
    error: `${where}: ${error}`,
  });

  let init: RequestInit;
  try {
    init = buildInit(method, req, opts);
  } catch (err) {
    return fail("request", messageOf(err));
  }
  if (opts.signal?.aborted) return fail("aborted", abortText(opts.signal));

  const timeout = AbortSignal.timeout(Math.max(1, req.timeoutMs));
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  // Decides between our deadline, the caller's abort and a plain network error after a throw.
  const classify = (err: unknown, phase: string, partial?: Partial<HttpAttempt>): HttpAttempt => {
    if (opts.signal?.aborted) return fail("aborted", abortText(opts.signal), partial);
    if (timeout.aborted) return fail("timeout", `${phase} within ${req.timeoutMs / 1000} s (timeout_sec)`, partial);
    if (errorCode(err) === "TooManyRedirects") {
      return fail("redirect", "too many redirects (a redirect loop?); fetch gave up following them", partial);
    }
    return fail("network", `${phase}: ${messageOf(err)}`, partial);
  };

  let url = new URL(req.url);
  // Sent as the Authorization header buildInit made of them, never in the request line.
  url.username = "";
  url.password = "";
  let { method: hopMethod, headers, body } = init as { method: string; headers: Headers; body?: string };
  const redirects: string[] = [];
  const mode = req.followRedirects ?? "same-origin";
  let res: Response;
  for (let hop = 0; ; hop++) {
    if (hop > 0) {
      const refusal = opts.checkHop?.({ url: url.href, headers: Object.fromEntries(headers), body: body ?? "" }) ?? null;
      if (refusal !== null) return fail("redirect", `${refusal}; the redirect was not followed`, { redirects });
    }
    if (opts.signingKey) {
      const t = Math.floor(Date.now() / 1000);
      headers.set(SIGNATURE_HEADER, signatureHeader(opts.signingKey, t, hopMethod, url, body ?? ""));
    }
    try {
      res = await (opts.fetch ?? fetch)(url.href, { method: hopMethod, headers, body, signal, redirect: "manual" });
    } catch (err) {
      return classify(err, hop === 0 ? "no response" : `no response from ${displayUrl(url.href)} (after a redirect)`, { redirects });
    }
    const location = REDIRECT_STATUSES.has(res.status) ? res.headers.get("location") : null;
    if (mode === "none" || location === null) break;
    res.body?.cancel().catch(() => {});
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      return fail("redirect", `HTTP ${res.status} redirected to an invalid location ${JSON.stringify(location.slice(0, 200))}`, { status: res.status, redirects });
    }
    if (next.protocol !== "http:" && next.protocol !== "https:") return fail("redirect", `HTTP ${res.status} redirected to an unsupported scheme "${next.protocol}"`, { status: res.status, redirects });
    if (hop + 1 > MAX_REDIRECTS) return fail("redirect", `too many redirects (more than ${MAX_REDIRECTS}; a redirect loop?); stopped at ${displayUrl(next.href)}`, { status: res.status, redirects });
    const crossOrigin = next.origin !== url.origin;
    if (crossOrigin && mode === "same-origin") {
      return fail(
        "redirect",
        `HTTP ${res.status} redirected to ${displayUrl(next.href)}, another origin; not followed because follow_redirects is "same-origin" (set it to "any" to follow, without the headers whose values came from secrets)`,
        { status: res.status, redirects },
      );
    }
    let note = `HTTP ${res.status} → ${displayUrl(next.href)}`;
    if (crossOrigin) {
      const dropped = [...headers.keys()].filter((name) => ALWAYS_DROPPED_CROSS_ORIGIN.has(name) || req.sensitiveHeaders?.includes(name));
      for (const name of dropped) headers.delete(name);
      note += dropped.length ? ` (another origin: dropped ${dropped.join(", ")})` : " (another origin)";
    }
    // As fetch does: 303 becomes a GET, and so does a POST answered 301/302; 307/308 keep both.
    if ((res.status === 303 && hopMethod !== "HEAD") || ((res.status === 301 || res.status === 302) && hopMethod === "POST")) {
      hopMethod = "GET";
      body = undefined;
      headers.delete("content-type");
      headers.delete("content-length");
    }
    redirects.push(note);
    url = next;
  }

  const head = { status: res.status, retryAfter: res.headers.get("retry-after"), ...(redirects.length ? { redirects } : {}) };
  let read: { text: string; truncated: boolean };
  try {
    read = await readCapped(res.body, opts.responseCapBytes ?? DEFAULT_RESPONSE_CAP_BYTES);
  } catch (err) {
    return classify(err, `HTTP ${res.status} but the body did not complete`, head);
  }
  const result: HttpAttempt = { ok: true, ...head, body: read.text, truncated: read.truncated, durationMs: performance.now() - started };
  if (isExpectedStatus(res.status, req.expectStatus)) return result;
  const expected = req.expectStatus.length === 0 ? "2xx" : req.expectStatus.join(", ");
  const redirected = redirects.length ? ` after redirect to ${displayUrl(url.href)}` : "";
  const answer = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
  return { ...result, ok: false, failure: "status", error: `${where}: ${answer}${redirected} (expected ${expected})` };
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Credentials a browser would not carry to another origin either. */
const ALWAYS_DROPPED_CROSS_ORIGIN = new Set(["authorization", "cookie", "proxy-authorization"]);

function buildInit(method: string, req: HttpRequest, opts: SendOptions): RequestInit {
  const url = new URL(req.url); // throws a clear "invalid URL" before anything is sent
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`unsupported URL scheme "${url.protocol}"`);
  const headers = new Headers(req.headers);
  // Credentials in the URL become the header fetch would make of them, so a redirect treats them
  // as it treats any Authorization (kept on the same origin, dropped on another).
  if (url.username || url.password) {
    if (!headers.has("authorization")) headers.set("Authorization", `Basic ${basicCredentials(url)}`);
  }
  headers.set("Idempotency-Key", opts.runId);
  headers.set("X-FleetCron-Run-Id", opts.runId);
  if (!headers.has("user-agent")) headers.set("User-Agent", opts.userAgent);
  let body: string | undefined;
  if (typeof req.body === "string") body = req.body;
  else if (req.body !== undefined && req.body !== null) {
    body = JSON.stringify(req.body);
    if (!headers.has("content-type")) headers.set("Content-Type", "application/json");
  }
  if (body !== undefined && (method === "GET" || method === "HEAD")) throw new Error(`a ${method} request cannot carry a body`);
  return { method, headers, body };
}

/** base64 of `user:password` from a URL's userinfo, decoded as the URL standard says. */
export function basicCredentials(url: URL): string {
  return Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`, "utf8").toString("base64");
}

/**
 * Reads at most `cap` bytes and cancels the rest, so a 200 MB answer costs 64 KiB of memory and the
 * connection is dropped instead of drained.
 */
async function readCapped(stream: ReadableStream<Uint8Array> | null, cap: number): Promise<{ text: string; truncated: boolean }> {
  if (!stream) return { text: "", truncated: false };
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > cap) {
        chunks.push(value.subarray(0, cap - size));
        size = cap;
        truncated = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  }
  if (truncated) reader.cancel().catch(() => {});
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // `stream: true` on a cut body drops a trailing partial character instead of inventing U+FFFD.
  return { text: new TextDecoder().decode(bytes, { stream: truncated }), truncated };
}

/** The URL for messages: a password written into the URL itself is hidden even if it is no secret. */
function displayUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = "***";
    return url.href;
  } catch {
    return raw;
  }
}

function abortText(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error && reason.name !== "AbortError" ? `: ${reason.message}` : "";
  return `aborted${why}`;
}

function errorCode(err: unknown): unknown {
  return err !== null && typeof err === "object" ? (err as { code?: unknown }).code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
