/**
 * How long to wait before a retry. Pure: randomness and the current time come in as arguments.
 *
 * Policy:
 * - base = delay_sec × backoff^(retryNumber − 1), then ± `jitter` × base at random, then capped at
 *   max_delay_sec (jitter first, so the cap really is the most a retry ever waits).
 * - A `Retry-After` from the server (delta-seconds or an HTTP date) raises the delay to at least what
 *   it asks, but still never beyond max_delay_sec: a run holds a lease and a concurrency slot while
 *   it sleeps, and the job's author bounded that wait on purpose. A server asking for an hour gets
 *   our last retry at max_delay_sec instead; if it still refuses, the step fails with its answer.
 */
import type { RetryPolicy } from "../jobs/types.ts";

export function retryDelayMs(
  policy: RetryPolicy,
  retryNumber: number,
  rand: () => number,
  retryAfter?: string | null,
  nowMs?: number,
): number {
  const capMs = nonNegative(policy.max_delay_sec, Infinity) * 1000;
  const n = Math.max(1, Math.floor(retryNumber));
  const base = nonNegative(policy.delay_sec, 0) * 1000 * nonNegative(policy.backoff, 1) ** (n - 1);
  const jitter = Math.min(1, nonNegative(policy.jitter, 0));
  // rand() ∈ [0, 1) maps to a factor in [1 − jitter, 1 + jitter).
  const jittered = base * (1 + jitter * (2 * rand() - 1));
  const computed = Math.min(capMs, Math.max(0, jittered));
  const asked = parseRetryAfterMs(retryAfter, nowMs);
  const delay = asked === null ? computed : Math.min(capMs, Math.max(computed, asked));
  return Math.round(delay);
}

/**
 * `Retry-After` in ms: delta-seconds, or an HTTP date relative to `nowMs` (a date is ignored without
 * `nowMs`, to stay pure). null when absent or unreadable; a date in the past means 0.
 */
export function parseRetryAfterMs(value: string | null | undefined, nowMs?: number): number | null {
  const text = value?.trim();
  if (!text) return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  // Every HTTP date form starts with a day name; Date.parse alone would read "-5" as a year.
  if (nowMs === undefined || !/^[a-z]{3}/i.test(text)) return null;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** Validation lives in the job schema; this only keeps a hand-written NaN or negative from looping. */
function nonNegative(value: number, fallback: number): number {
  return typeof value === "number" && !Number.isNaN(value) && value >= 0 ? value : fallback;
}

/**
 * Whether an answer is worth asking again. Timeouts, lost connections, 408/425/429 and 5xx may pass;
 * any other status is the receiver's considered answer (a 404 or 401 will not fix itself within
 * max_delay_sec), so retrying it would only repeat a request the receiver already refused.
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
