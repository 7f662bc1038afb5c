import { describe, expect, test } from "bun:test";
import type { Schedule } from "../../src/jobs/types.ts";
import { formatEvery, parseEvery } from "../../src/schedule/every.ts";
import { firesBetween, nextFireAfter, nextFires, previousFireBefore } from "../../src/schedule/next.ts";

const every = (text: string): Schedule => ({ kind: "every", ms: parseEvery(text)!, text });
const ms = (iso: string) => Date.parse(iso);
const iso = (instant: number) => new Date(instant).toISOString();

describe("parseEvery", () => {
  const valid: [string, number][] = [
    ["30s", 30_000],
    ["1s", 1000],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1h30m", 5_400_000],
    ["1d2h3m4s", 93_784_000],
    ["90s", 90_000],
    [" 15M ", 900_000],
  ];
  for (const [text, expected] of valid) {
    test(`${JSON.stringify(text)} → ${expected} ms`, () => expect(parseEvery(text)).toBe(expected));
  }

  for (const text of ["", "0s", "500ms", "30", "s", "1.5h", "-5m", "30m1h", "1h 30m", "5 m", "1w", "1h1h"]) {
    test(`${JSON.stringify(text)} is invalid`, () => expect(parseEvery(text)).toBeNull());
  }

  test("formatEvery is its inverse", () => {
    for (const text of ["30s", "5m", "2h", "1d", "1h30m", "1d2h3m4s"]) {
      expect(formatEvery(parseEvery(text)!)).toBe(text);
    }
    expect(formatEvery(90_000)).toBe("1m30s");
  });
});

describe("every: elapsed time aligned to the Unix epoch", () => {
  test("fires at multiples of the interval since 1970, strictly after", () => {
    expect(iso(nextFireAfter(every("5m"), "UTC", ms("2025-06-01T10:02:03.400Z"))!)).toBe("2025-06-01T10:05:00.000Z");
    expect(iso(nextFireAfter(every("5m"), "UTC", ms("2025-06-01T10:05:00.000Z"))!)).toBe("2025-06-01T10:10:00.000Z");
    expect(nextFireAfter(every("7s"), "UTC", 0)).toBe(7000);
    expect(nextFireAfter(every("7s"), "UTC", -1)).toBe(0);
  });

  test("the zone is ignored, even across a DST change", () => {
    const after = ms("2025-03-09T06:50:00Z");
    const utc = nextFires(every("30m"), "UTC", after, 4);
    expect(nextFires(every("30m"), "America/New_York", after, 4)).toEqual(utc);
    expect(utc.map(iso)).toEqual([
      "2025-03-09T07:00:00.000Z",
      "2025-03-09T07:30:00.000Z",
      "2025-03-09T08:00:00.000Z",
      "2025-03-09T08:30:00.000Z",
    ]);
  });

  test("1d fires at 00:00 UTC, not local midnight", () => {
    expect(iso(nextFireAfter(every("1d"), "Asia/Seoul", ms("2025-06-01T12:00:00Z"))!)).toBe("2025-06-02T00:00:00.000Z");
  });

  test("previous fire and firesBetween", () => {
    expect(previousFireBefore(every("10s"), "UTC", 20_000)).toBe(10_000);
    expect(previousFireBefore(every("10s"), "UTC", 20_001)).toBe(20_000);
    expect(firesBetween(every("10s"), "UTC", 0, 60_000, 100)).toEqual([10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    expect(firesBetween(every("10s"), "UTC", 0, 60_000, 2)).toEqual([50_000, 60_000]);
    expect(firesBetween(every("10s"), "UTC", 10_000, 19_999, 5)).toEqual([]);
  });

  test("an invalid interval is refused rather than looping", () => {
    expect(() => nextFireAfter({ kind: "every", ms: 0, text: "0s" }, "UTC", 0)).toThrow("invalid interval");
  });
});
