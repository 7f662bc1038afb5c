import { describe, expect, test } from "bun:test";
import { displayTime } from "../../src/schedule/display.ts";
import {
  gapEnd,
  isValidTimeZone,
  resolveWallTime,
  wallParts,
  zoneOffsetMs,
} from "../../src/schedule/zone.ts";

const ms = (iso: string) => Date.parse(iso);

describe("isValidTimeZone", () => {
  test("IANA names, UTC and fixed offsets are valid", () => {
    for (const tz of ["UTC", "Etc/UTC", "America/New_York", "Asia/Seoul", "Australia/Lord_Howe", "Etc/GMT+5"]) {
      expect(isValidTimeZone(tz)).toBe(true);
    }
  });
  test("unknown names and empty text are not", () => {
    for (const tz of ["", " ", "Mars/Olympus", "New York", "America/NewYork"]) {
      expect(isValidTimeZone(tz)).toBe(false);
    }
  });
  test("using an unknown zone throws a readable error", () => {
    expect(() => wallParts(0, "Mars/Olympus")).toThrow('unknown time zone "Mars/Olympus"');
  });
});

describe("wallParts", () => {
  test("reads the wall time with weekday (0 = Sunday)", () => {
    expect(wallParts(ms("2025-03-09T07:00:00Z"), "America/New_York")).toEqual({
      year: 2025, month: 3, day: 9, hour: 3, minute: 0, second: 0, weekday: 0,
    });
    expect(wallParts(ms("2025-12-31T15:00:00Z"), "Asia/Seoul")).toEqual({
      year: 2026, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 4,
    });
    expect(wallParts(ms("2024-02-29T23:59:59.999Z"), "UTC")).toEqual({
      year: 2024, month: 2, day: 29, hour: 23, minute: 59, second: 59, weekday: 4,
    });
  });
  test("instants before 1970 work", () => {
    expect(wallParts(ms("1969-07-20T20:17:40Z"), "UTC")).toMatchObject({ year: 1969, month: 7, day: 20, hour: 20, weekday: 0 });
  });
});

describe("offsets", () => {
  test("zoneOffsetMs", () => {
    expect(zoneOffsetMs(ms("2025-01-15T00:00:00Z"), "America/New_York")).toBe(-5 * 3_600_000);
    expect(zoneOffsetMs(ms("2025-07-15T00:00:00Z"), "America/New_York")).toBe(-4 * 3_600_000);
    expect(zoneOffsetMs(ms("2025-07-15T00:00:00Z"), "Asia/Kolkata")).toBe(5.5 * 3_600_000);
    expect(zoneOffsetMs(ms("2025-07-15T00:00:00.250Z"), "UTC")).toBe(0);
  });
  test("displayTime (date-fns-tz)", () => {
    expect(displayTime(ms("2025-06-01T00:00:00Z"), "Asia/Seoul")).toBe("2025-06-01 09:00:00 (+09:00)");
    expect(displayTime(ms("2025-06-01T00:00:00Z"), "UTC")).toBe("2025-06-01 00:00:00 UTC (+00:00)");
    expect(displayTime(ms("2025-11-02T06:30:00Z"), "America/New_York")).toBe("2025-11-02 01:30:00 EST (-05:00)");
  });
});

describe("resolveWallTime", () => {
  test("zones without DST map each wall time to one instant", () => {
    expect(resolveWallTime({ year: 2025, month: 3, day: 9, hour: 2, minute: 30 }, "Asia/Seoul")).toEqual([
      ms("2025-03-08T17:30:00Z"),
    ]);
    expect(gapEnd({ year: 2025, month: 3, day: 9, hour: 2, minute: 30 }, "Asia/Seoul")).toBeNull();
  });
  test("seconds are honoured", () => {
    expect(resolveWallTime({ year: 2025, month: 6, day: 1, hour: 0, minute: 0, second: 7 }, "UTC")).toEqual([
      ms("2025-06-01T00:00:07Z"),
    ]);
  });
  test("impossible wall times are refused, not rolled over", () => {
    expect(() => resolveWallTime({ year: 2025, month: 2, day: 29, hour: 0, minute: 0 }, "UTC")).toThrow(RangeError);
    expect(() => resolveWallTime({ year: 2025, month: 1, day: 1, hour: 24, minute: 0 }, "UTC")).toThrow(RangeError);
    expect(resolveWallTime({ year: 2024, month: 2, day: 29, hour: 0, minute: 0 }, "UTC")).toEqual([ms("2024-02-29T00:00:00Z")]);
  });
  test("a midnight gap (Santiago, 2025-09-07 00:00 → 01:00)", () => {
    const wall = { year: 2025, month: 9, day: 7, hour: 0, minute: 30 };
    expect(resolveWallTime(wall, "America/Santiago")).toEqual([]);
    expect(new Date(gapEnd(wall, "America/Santiago")!).toISOString()).toBe("2025-09-07T04:00:00.000Z");
  });
});

test("displayTime (date-fns-tz) keeps a bare GMT but drops GMT+n, which repeats the offset", () => {
  const london = "Europe/London";
  expect(displayTime(ms("2025-01-15T12:00:00Z"), london)).toBe("2025-01-15 12:00:00 GMT (+00:00)");
  // en-US has no "BST"; ICU names London summer time "GMT+1".
  expect(displayTime(ms("2025-07-15T12:00:00Z"), london)).toBe("2025-07-15 13:00:00 (+01:00)");
});
