import { describe, expect, test } from "bun:test";
import type { Schedule } from "../../src/jobs/types.ts";
import {
  describeSchedule,
  firesBetween,
  nextFireAfter,
  nextFires,
  previousFireBefore,
} from "../../src/schedule/next.ts";

const cron = (expression: string): Schedule => ({ kind: "cron", expression });
const seed = (hour: number | null, minute: number): Schedule => ({ kind: "hour-minute", hour, minute });
const ms = (iso: string) => Date.parse(iso);
const iso = (instant: number) => new Date(instant).toISOString();
const isoList = (instants: number[]) => instants.map(iso);

describe("zones without DST", () => {
  test("Asia/Seoul: 0 9 * * * is 00:00Z every day", () => {
    expect(isoList(nextFires(cron("0 9 * * *"), "Asia/Seoul", ms("2025-03-08T12:00:00Z"), 3))).toEqual([
      "2025-03-09T00:00:00.000Z",
      "2025-03-10T00:00:00.000Z",
      "2025-03-11T00:00:00.000Z",
    ]);
  });

  test("Asia/Seoul: seed hour 9 minute 30 (the seed's example)", () => {
    expect(iso(nextFireAfter(seed(9, 30), "Asia/Seoul", ms("2025-06-01T00:30:00Z"))!)).toBe("2025-06-02T00:30:00.000Z");
    expect(iso(nextFireAfter(seed(9, 30), "Asia/Seoul", ms("2025-06-01T00:29:59.999Z"))!)).toBe("2025-06-01T00:30:00.000Z");
  });

  test("seed hour null fires every hour at its minute", () => {
    expect(isoList(nextFires(seed(null, 0), "UTC", ms("2025-06-01T22:10:00Z"), 3))).toEqual([
      "2025-06-01T23:00:00.000Z",
      "2025-06-02T00:00:00.000Z",
      "2025-06-02T01:00:00.000Z",
    ]);
  });

  test("a half-hour zone (Asia/Kolkata)", () => {
    expect(iso(nextFireAfter(cron("0 0 * * *"), "Asia/Kolkata", ms("2025-06-01T00:00:00Z"))!)).toBe("2025-06-01T18:30:00.000Z");
  });
});

describe("cron details", () => {
  test("6-field expressions fire on seconds", () => {
    expect(isoList(nextFires(cron("*/20 * * * * *"), "UTC", ms("2025-06-01T10:00:45Z"), 4))).toEqual([
      "2025-06-01T10:01:00.000Z",
      "2025-06-01T10:01:20.000Z",
      "2025-06-01T10:01:40.000Z",
      "2025-06-01T10:02:00.000Z",
    ]);
    expect(isoList(nextFires(cron("* * * * * *"), "Europe/Berlin", ms("2025-06-01T23:59:58.5Z"), 3))).toEqual([
      "2025-06-01T23:59:59.000Z",
      "2025-06-02T00:00:00.000Z",
      "2025-06-02T00:00:01.000Z",
    ]);
    expect(iso(nextFireAfter(cron("5 30 9 * * *"), "UTC", ms("2025-06-01T09:30:05Z"))!)).toBe("2025-06-02T09:30:05.000Z");
  });

  test("day-of-month OR day-of-week when both are restricted (Vixie)", () => {
    // 2025-06: the 1st is a Sunday; Mondays are 2, 9, 16, 23, 30.
    const fires = nextFires(cron("0 12 1,15 * MON"), "UTC", ms("2025-06-01T00:00:00Z"), 7);
    expect(fires.map((f) => iso(f).slice(0, 10))).toEqual([
      "2025-06-01",
      "2025-06-02",
      "2025-06-09",
      "2025-06-15",
      "2025-06-16",
      "2025-06-23",
      "2025-06-30",
    ]);
  });

  test("AND when one day field starts with * (even a step)", () => {
    // Every other day-of-month that is also a Monday: 2025-06-09 (9), 06-23 (23).
    const fires = nextFires(cron("0 12 */2 * MON"), "UTC", ms("2025-06-01T00:00:00Z"), 2);
    expect(fires.map((f) => iso(f).slice(0, 10))).toEqual(["2025-06-09", "2025-06-23"]);
    expect(iso(nextFireAfter(cron("0 0 13 * *"), "UTC", ms("2025-06-01T00:00:00Z"))!)).toBe("2025-06-13T00:00:00.000Z");
    expect(iso(nextFireAfter(cron("0 0 * * FRI"), "UTC", ms("2025-06-01T00:00:00Z"))!)).toBe("2025-06-06T00:00:00.000Z");
  });

  test("weekdays are read in the job's zone, not UTC", () => {
    // Monday 08:00 in Seoul is Sunday 23:00 UTC.
    expect(iso(nextFireAfter(cron("0 8 * * MON"), "Asia/Seoul", ms("2025-06-01T00:00:00Z"))!)).toBe("2025-06-01T23:00:00.000Z");
  });

  test("leap days are found years ahead; impossible dates are refused when parsed (a job with one is invalid)", () => {
    expect(iso(nextFireAfter(cron("0 0 29 2 *"), "UTC", ms("2025-01-01T00:00:00Z"))!)).toBe("2028-02-29T00:00:00.000Z");
    expect(() => nextFireAfter(cron("0 0 30 2 *"), "UTC", ms("2025-01-01T00:00:00Z"))).toThrow(/can never fire/);
    expect(() => nextFireAfter(cron("0 0 31 4,6,9,11 *"), "America/New_York", 0)).toThrow(/can never fire/);
  });

  test("month boundaries and year end", () => {
    expect(iso(nextFireAfter(cron("@yearly"), "Europe/Berlin", ms("2025-06-01T00:00:00Z"))!)).toBe("2025-12-31T23:00:00.000Z");
    expect(iso(nextFireAfter(cron("0 0 31 * *"), "UTC", ms("2025-04-01T00:00:00Z"))!)).toBe("2025-05-31T00:00:00.000Z");
  });

  test("an invalid expression throws the parse error", () => {
    expect(() => nextFireAfter(cron("0 25 * * *"), "UTC", 0)).toThrow('hour field "25"');
    expect(() => nextFireAfter(seed(24, 0), "UTC", 0)).toThrow("hour 24");
    expect(() => nextFireAfter(cron("0 9 * * *"), "Nowhere/Else", 0)).toThrow('unknown time zone "Nowhere/Else"');
  });
});

describe("nextFires, previousFireBefore, firesBetween", () => {
  test("nextFires returns exactly count instants, strictly increasing", () => {
    const fires = nextFires(cron("*/7 * * * *"), "America/New_York", ms("2025-03-09T05:00:00Z"), 50);
    expect(fires).toHaveLength(50);
    for (let i = 1; i < fires.length; i++) expect(fires[i]!).toBeGreaterThan(fires[i - 1]!);
    expect(nextFires(cron("0 0 * * *"), "UTC", 0, 0)).toEqual([]);
    expect(nextFires(cron("0 0 29 2 *"), "UTC", ms("2025-01-01T00:00:00Z"), 3).map((f) => iso(f).slice(0, 4))).toEqual([
      "2028",
      "2032",
      "2036",
    ]);
  });

  test("nextFires stops early when the schedule runs out", () => {
    const once = { kind: "at" as const, text: "2025-01-01T00:00:00Z", instant: ms("2025-01-01T00:00:00Z") };
    expect(nextFires(once, "UTC", 0, 3)).toEqual([ms("2025-01-01T00:00:00Z")]);
  });

  test("previousFireBefore is strictly before", () => {
    expect(iso(previousFireBefore(cron("0 9 * * *"), "Asia/Seoul", ms("2025-06-02T00:00:00Z"))!)).toBe("2025-06-01T00:00:00.000Z");
    expect(iso(previousFireBefore(cron("0 9 * * *"), "Asia/Seoul", ms("2025-06-02T00:00:00.001Z"))!)).toBe("2025-06-02T00:00:00.000Z");
  });

  test("firesBetween is (from, to], ascending", () => {
    const schedule = seed(null, 0);
    expect(isoList(firesBetween(schedule, "UTC", ms("2025-06-01T00:00:00Z"), ms("2025-06-01T03:00:00Z"), 10))).toEqual([
      "2025-06-01T01:00:00.000Z",
      "2025-06-01T02:00:00.000Z",
      "2025-06-01T03:00:00.000Z",
    ]);
  });

  test("firesBetween keeps the most recent `cap` when there are more", () => {
    const schedule = cron("* * * * * *");
    const from = ms("2025-06-01T00:00:00Z");
    const to = ms("2025-06-08T00:00:00Z");
    expect(isoList(firesBetween(schedule, "Europe/Berlin", from, to, 3))).toEqual([
      "2025-06-07T23:59:58.000Z",
      "2025-06-07T23:59:59.000Z",
      "2025-06-08T00:00:00.000Z",
    ]);
    expect(firesBetween(schedule, "UTC", from, to, 0)).toEqual([]);
    expect(firesBetween(schedule, "UTC", to, from, 5)).toEqual([]);
  });

  test("firesBetween over a window with no fires returns quickly", () => {
    const started = performance.now();
    expect(firesBetween(cron("0 0 1 1 *"), "UTC", ms("2025-01-01T00:00:00Z"), ms("2025-12-31T00:00:00Z"), 5)).toEqual([]);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe("describeSchedule", () => {
  test("readable forms", () => {
    expect(describeSchedule(seed(null, 0))).toBe("every hour at :00");
    expect(describeSchedule(seed(null, 5))).toBe("every hour at :05");
    expect(describeSchedule(seed(9, 30))).toBe("daily at 09:30");
    expect(describeSchedule(cron("0 9 * * 1-5"))).toBe("cron 0 9 * * 1-5");
    expect(describeSchedule({ kind: "every", ms: 30_000, text: "30s" })).toBe("every 30s");
    expect(describeSchedule({ kind: "every", ms: 5_400_000, text: "" })).toBe("every 1h30m");
  });
});

describe("compiled pattern cache", () => {
  test("a schedule object edited in place is recompiled, not served stale", () => {
    const schedule = { kind: "cron", expression: "0 9 * * *" } as { kind: "cron"; expression: string };
    const after = ms("2025-06-01T00:00:00Z");
    expect(iso(nextFireAfter(schedule, "UTC", after)!)).toBe("2025-06-01T09:00:00.000Z");
    schedule.expression = "0 10 * * *";
    expect(iso(nextFireAfter(schedule, "UTC", after)!)).toBe("2025-06-01T10:00:00.000Z");
    const seedSchedule = { kind: "hour-minute", hour: 9, minute: 0 } as { kind: "hour-minute"; hour: number | null; minute: number };
    expect(iso(nextFireAfter(seedSchedule, "UTC", after)!)).toBe("2025-06-01T09:00:00.000Z");
    seedSchedule.hour = null;
    expect(iso(nextFireAfter(seedSchedule, "UTC", after)!)).toBe("2025-06-01T01:00:00.000Z");
  });
});
