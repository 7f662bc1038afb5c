import { describe, expect, test } from "bun:test";
import type { RetryPolicy } from "../../src/jobs/types.ts";
import { isRetryableStatus, parseRetryAfterMs, retryDelayMs } from "../../src/executor/retry.ts";

const policy = (p: Partial<RetryPolicy> = {}): RetryPolicy => ({ retries: 5, delay_sec: 2, backoff: 2, max_delay_sec: 30, jitter: 0, ...p });
const mid = () => 0.5; // jitter factor exactly 1

describe("retryDelayMs", () => {
  test("exponential backoff from delay_sec, capped at max_delay_sec", () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(policy(), n, mid))).toEqual([2000, 4000, 8000, 16000, 30000]);
  });

  test("backoff 1 is constant (the seed's retry {retries, delay_sec})", () => {
    expect([1, 2, 3].map((n) => retryDelayMs(policy({ backoff: 1, delay_sec: 5, max_delay_sec: 300 }), n, mid))).toEqual([5000, 5000, 5000]);
  });

  test("jitter stays within ±fraction and never passes the cap", () => {
    const p = policy({ jitter: 0.25 });
    expect(retryDelayMs(p, 1, () => 0)).toBe(1500);
    expect(retryDelayMs(p, 1, () => 0.999999)).toBeCloseTo(2500, -1);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(p, 2, Math.random);
      expect(d).toBeGreaterThanOrEqual(3000);
      expect(d).toBeLessThanOrEqual(5000);
    }
    // at the cap, jitter only lowers the delay
    expect(retryDelayMs(p, 10, () => 0.999999)).toBe(30000);
    expect(retryDelayMs(p, 10, () => 0)).toBe(30000);
  });

  test("Retry-After in seconds raises the delay, but not beyond max_delay_sec", () => {
    expect(retryDelayMs(policy(), 1, mid, "10")).toBe(10000);
    expect(retryDelayMs(policy(), 1, mid, "1")).toBe(2000); // the computed delay is longer
    expect(retryDelayMs(policy(), 1, mid, "3600")).toBe(30000);
  });

  test("Retry-After as an HTTP date is relative to now", () => {
    const now = Date.parse("2025-06-01T12:00:00Z");
    expect(retryDelayMs(policy(), 1, mid, "Sun, 01 Jun 2025 12:00:20 GMT", now)).toBe(20000);
    expect(retryDelayMs(policy(), 1, mid, "Sun, 01 Jun 2025 11:00:00 GMT", now)).toBe(2000); // in the past
    expect(retryDelayMs(policy(), 1, mid, "Mon, 02 Jun 2025 12:00:00 GMT", now)).toBe(30000); // far: capped
    expect(retryDelayMs(policy(), 1, mid, "garbage", now)).toBe(2000);
  });

  test("hand-written nonsense does not produce NaN or negative delays", () => {
    expect(retryDelayMs(policy({ delay_sec: Number.NaN }), 1, mid)).toBe(0);
    expect(retryDelayMs(policy({ delay_sec: -3 }), 1, mid)).toBe(0);
    expect(retryDelayMs(policy({ max_delay_sec: Number.NaN }), 8, mid)).toBe(256000);
    expect(retryDelayMs(policy(), 0, mid)).toBe(2000);
  });
});

describe("parseRetryAfterMs", () => {
  test("seconds, date, absent", () => {
    expect(parseRetryAfterMs(" 5 ")).toBe(5000);
    expect(parseRetryAfterMs(null)).toBeNull();
    expect(parseRetryAfterMs("")).toBeNull();
    expect(parseRetryAfterMs("Sun, 01 Jun 2025 12:00:20 GMT")).toBeNull(); // no `now`: stays pure
    expect(parseRetryAfterMs("-5", 0)).toBeNull();
  });
});

describe("isRetryableStatus", () => {
  test("transient answers retry, considered refusals do not", () => {
    for (const s of [408, 425, 429, 500, 502, 503, 504]) expect(isRetryableStatus(s)).toBe(true);
    for (const s of [200, 301, 400, 401, 403, 404, 422]) expect(isRetryableStatus(s)).toBe(false);
  });
});
