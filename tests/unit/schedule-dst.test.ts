/**
 * DST tables for the Vixie cron rule (README, "Time zones and DST"), with exact UTC instants. This file is also run by
 * `dst-host-zones.test.ts` under several host `TZ` values: the answers must not change.
 */
import { describe, expect, test } from "bun:test";
import type { Schedule } from "../../src/jobs/types.ts";
import { firesBetween, nextFireAfter, nextFires } from "../../src/schedule/next.ts";
import { displayTime } from "../../src/schedule/display.ts";
import { findTransition, gapEnd, resolveWallTime, zoneOffsetMs } from "../../src/schedule/zone.ts";

const NEW_YORK = "America/New_York";
const LORD_HOWE = "Australia/Lord_Howe";
const BERLIN = "Europe/Berlin";

const cron = (expression: string): Schedule => ({ kind: "cron", expression });
const seed = (hour: number | null, minute: number): Schedule => ({ kind: "hour-minute", hour, minute });
const ms = (iso: string) => Date.parse(iso);
const iso = (instant: number) => new Date(instant).toISOString();

const HOST_JANUARY_OFFSETS: Record<string, number> = {
  UTC: 0,
  "Etc/UTC": 0,
  "America/Los_Angeles": 480,
  "Australia/Sydney": -660,
};

test("the host TZ this suite runs under is the one requested", () => {
  const hostZone = process.env.TZ;
  const expected = hostZone === undefined ? undefined : HOST_JANUARY_OFFSETS[hostZone];
  // Printed so the parent suite can see which zone the child really ran in.
  console.log(`[host-tz] TZ=${hostZone ?? "(unset)"} januaryOffset=${new Date(ms("2025-01-15T12:00:00Z")).getTimezoneOffset()}`);
  if (expected !== undefined) {
    expect(new Date(ms("2025-01-15T12:00:00Z")).getTimezoneOffset()).toBe(expected);
  }
});

interface Case {
  name: string;
  tz: string;
  schedule: Schedule;
  after: string;
  expected: string[];
}

const CASES: Case[] = [
  // New York, spring forward 2025-03-09: 02:00 EST → 03:00 EDT at 07:00Z.
  {
    name: "NY spring: seed 02:30 fires at the end of the gap (03:00 EDT)",
    tz: NEW_YORK,
    schedule: seed(2, 30),
    after: "2025-03-08T00:00:00Z",
    expected: ["2025-03-08T07:30:00.000Z", "2025-03-09T07:00:00.000Z", "2025-03-10T06:30:00.000Z"],
  },
  {
    name: "NY spring: cron 30 2 * * * fires at the end of the gap",
    tz: NEW_YORK,
    schedule: cron("30 2 * * *"),
    after: "2025-03-08T12:00:00Z",
    expected: ["2025-03-09T07:00:00.000Z", "2025-03-10T06:30:00.000Z"],
  },
  {
    name: "NY spring: several gap times of a fixed hour collapse into one fire",
    tz: NEW_YORK,
    schedule: cron("*/20 2 * * *"),
    after: "2025-03-09T06:00:00Z",
    expected: ["2025-03-09T07:00:00.000Z", "2025-03-10T06:00:00.000Z", "2025-03-10T06:20:00.000Z"],
  },
  {
    name: "NY spring: 6-field seconds in the gap collapse too",
    tz: NEW_YORK,
    schedule: cron("*/10 30 2 * * *"),
    after: "2025-03-09T06:00:00Z",
    expected: ["2025-03-09T07:00:00.000Z", "2025-03-10T06:30:00.000Z", "2025-03-10T06:30:10.000Z"],
  },
  {
    name: "NY spring: wildcard 30 * * * * skips 02:30",
    tz: NEW_YORK,
    schedule: cron("30 * * * *"),
    after: "2025-03-09T05:00:00Z",
    expected: [
      "2025-03-09T05:30:00.000Z",
      "2025-03-09T06:30:00.000Z",
      "2025-03-09T07:30:00.000Z",
      "2025-03-09T08:30:00.000Z",
    ],
  },
  {
    name: "NY spring: seed hour null minute 30 skips 02:30",
    tz: NEW_YORK,
    schedule: seed(null, 30),
    after: "2025-03-09T06:00:00Z",
    expected: ["2025-03-09T06:30:00.000Z", "2025-03-09T07:30:00.000Z"],
  },
  {
    name: "NY spring: */15 * * * * goes from 01:45 EST to 03:00 EDT",
    tz: NEW_YORK,
    schedule: cron("*/15 * * * *"),
    after: "2025-03-09T06:30:00Z",
    expected: ["2025-03-09T06:45:00.000Z", "2025-03-09T07:00:00.000Z", "2025-03-09T07:15:00.000Z"],
  },
  {
    name: "NY spring: hour step 0 */2 * * * follows the wall clock (02:00 skipped)",
    tz: NEW_YORK,
    schedule: cron("0 */2 * * *"),
    after: "2025-03-09T04:00:00Z",
    expected: ["2025-03-09T05:00:00.000Z", "2025-03-09T08:00:00.000Z"],
  },
  // New York, fall back 2025-11-02: 02:00 EDT → 01:00 EST at 06:00Z.
  {
    name: "NY fall: cron 30 1 * * * fires once, at 01:30 EDT",
    tz: NEW_YORK,
    schedule: cron("30 1 * * *"),
    after: "2025-11-01T12:00:00Z",
    expected: ["2025-11-02T05:30:00.000Z", "2025-11-03T06:30:00.000Z"],
  },
  {
    name: "NY fall: seed 01:30 fires once, at 01:30 EDT",
    tz: NEW_YORK,
    schedule: seed(1, 30),
    after: "2025-11-01T12:00:00Z",
    expected: ["2025-11-02T05:30:00.000Z", "2025-11-03T06:30:00.000Z"],
  },
  {
    name: "NY fall: seed 02:30 (outside the overlap) fires at 02:30 EST",
    tz: NEW_YORK,
    schedule: seed(2, 30),
    after: "2025-11-01T12:00:00Z",
    expected: ["2025-11-02T07:30:00.000Z", "2025-11-03T07:30:00.000Z"],
  },
  {
    name: "NY fall: after the first 01:30, the fixed-hour job waits for the next day",
    tz: NEW_YORK,
    schedule: cron("30 1 * * *"),
    after: "2025-11-02T05:30:00Z",
    expected: ["2025-11-03T06:30:00.000Z"],
  },
  {
    name: "NY fall: wildcard 30 * * * * fires 01:30 EDT and 01:30 EST",
    tz: NEW_YORK,
    schedule: cron("30 * * * *"),
    after: "2025-11-02T04:00:00Z",
    expected: [
      "2025-11-02T04:30:00.000Z",
      "2025-11-02T05:30:00.000Z",
      "2025-11-02T06:30:00.000Z",
      "2025-11-02T07:30:00.000Z",
    ],
  },
  {
    name: "NY fall: seed hour null minute 30 fires both 01:30s",
    tz: NEW_YORK,
    schedule: seed(null, 30),
    after: "2025-11-02T05:00:00Z",
    expected: ["2025-11-02T05:30:00.000Z", "2025-11-02T06:30:00.000Z", "2025-11-02T07:30:00.000Z"],
  },
  {
    name: "NY fall: */15 * * * * keeps a 15-minute rhythm through the repeated hour",
    tz: NEW_YORK,
    schedule: cron("*/15 * * * *"),
    after: "2025-11-02T05:30:00Z",
    expected: [
      "2025-11-02T05:45:00.000Z",
      "2025-11-02T06:00:00.000Z",
      "2025-11-02T06:15:00.000Z",
      "2025-11-02T06:30:00.000Z",
      "2025-11-02T06:45:00.000Z",
      "2025-11-02T07:00:00.000Z",
    ],
  },
  {
    name: "NY fall: every minute of hour 1 fixed-hour fires 60 times, not 120",
    tz: NEW_YORK,
    schedule: cron("* 1 * * *"),
    after: "2025-11-02T05:58:00Z",
    expected: ["2025-11-02T05:59:00.000Z", "2025-11-03T06:00:00.000Z"],
  },
  // Lord Howe: 30-minute DST. 2025-04-06 02:00 +11 → 01:30 +10:30 at 15:00Z (previous UTC day);
  // 2025-10-05 02:00 +10:30 → 02:30 +11 at 15:30Z.
  {
    name: "Lord Howe spring: seed 02:15 fires at 02:30 +11",
    tz: LORD_HOWE,
    schedule: seed(2, 15),
    after: "2025-10-03T12:00:00Z",
    expected: ["2025-10-03T15:45:00.000Z", "2025-10-04T15:30:00.000Z", "2025-10-05T15:15:00.000Z"],
  },
  {
    name: "Lord Howe spring: wildcard */15 skips 02:00 and 02:15",
    tz: LORD_HOWE,
    schedule: cron("*/15 * * * *"),
    after: "2025-10-04T15:00:00Z",
    expected: ["2025-10-04T15:15:00.000Z", "2025-10-04T15:30:00.000Z", "2025-10-04T15:45:00.000Z"],
  },
  {
    name: "Lord Howe fall: cron 45 1 * * * fires once, at 01:45 +11",
    tz: LORD_HOWE,
    schedule: cron("45 1 * * *"),
    after: "2025-04-05T00:00:00Z",
    expected: ["2025-04-05T14:45:00.000Z", "2025-04-06T15:15:00.000Z"],
  },
  {
    name: "Lord Howe fall: wildcard */15 repeats 01:30 and 01:45",
    tz: LORD_HOWE,
    schedule: cron("*/15 * * * *"),
    after: "2025-04-05T14:15:00Z",
    expected: [
      "2025-04-05T14:30:00.000Z",
      "2025-04-05T14:45:00.000Z",
      "2025-04-05T15:00:00.000Z",
      "2025-04-05T15:15:00.000Z",
      "2025-04-05T15:30:00.000Z",
    ],
  },
  // Berlin: 2025-03-30 02:00 CET → 03:00 CEST and 2025-10-26 03:00 CEST → 02:00 CET, both at 01:00Z.
  {
    name: "Berlin spring: 30 2 * * * fires at 03:00 CEST",
    tz: BERLIN,
    schedule: cron("30 2 * * *"),
    after: "2025-03-29T12:00:00Z",
    expected: ["2025-03-30T01:00:00.000Z", "2025-03-31T00:30:00.000Z"],
  },
  {
    name: "Berlin spring: wildcard 30 * * * * skips 02:30",
    tz: BERLIN,
    schedule: cron("30 * * * *"),
    after: "2025-03-29T23:00:00Z",
    expected: ["2025-03-29T23:30:00.000Z", "2025-03-30T00:30:00.000Z", "2025-03-30T01:30:00.000Z"],
  },
  {
    name: "Berlin fall: 30 2 * * * fires once, at 02:30 CEST",
    tz: BERLIN,
    schedule: cron("30 2 * * *"),
    after: "2025-10-25T12:00:00Z",
    expected: ["2025-10-26T00:30:00.000Z", "2025-10-27T01:30:00.000Z"],
  },
  {
    name: "Berlin fall: wildcard 30 * * * * fires both 02:30s",
    tz: BERLIN,
    schedule: cron("30 * * * *"),
    after: "2025-10-25T23:00:00Z",
    expected: [
      "2025-10-25T23:30:00.000Z",
      "2025-10-26T00:30:00.000Z",
      "2025-10-26T01:30:00.000Z",
      "2025-10-26T02:30:00.000Z",
    ],
  },
];

describe("fire instants across DST changes", () => {
  for (const c of CASES) {
    test(c.name, () => {
      const fires = nextFires(c.schedule, c.tz, ms(c.after), c.expected.length);
      expect(fires.map(iso)).toEqual(c.expected);
    });

    test(`${c.name} (searched backwards)`, () => {
      const last = ms(c.expected.at(-1)!);
      expect(firesBetween(c.schedule, c.tz, ms(c.after), last, 1000).map(iso)).toEqual(c.expected);
    });
  }

  test("a gap fire is not repeated when asked again from that instant", () => {
    const gapFire = ms("2025-03-09T07:00:00Z");
    expect(iso(nextFireAfter(seed(2, 30), NEW_YORK, gapFire - 1)!)).toBe("2025-03-09T07:00:00.000Z");
    expect(iso(nextFireAfter(seed(2, 30), NEW_YORK, gapFire)!)).toBe("2025-03-10T06:30:00.000Z");
  });

  test("a fixed-hour job asked from inside the overlap does not fire the second 01:30", () => {
    expect(iso(nextFireAfter(cron("30 1 * * *"), NEW_YORK, ms("2025-11-02T06:10:00Z"))!)).toBe(
      "2025-11-03T06:30:00.000Z",
    );
  });
});

describe("resolving wall times (no date-fns-tz)", () => {
  test("a gap time has no instant, and its gap ends at the transition", () => {
    const wall = { year: 2025, month: 3, day: 9, hour: 2, minute: 30 };
    expect(resolveWallTime(wall, NEW_YORK)).toEqual([]);
    expect(iso(gapEnd(wall, NEW_YORK)!)).toBe("2025-03-09T07:00:00.000Z");
  });

  test("an overlap time has two instants, earlier first", () => {
    const wall = { year: 2025, month: 11, day: 2, hour: 1, minute: 30 };
    expect(resolveWallTime(wall, NEW_YORK).map(iso)).toEqual(["2025-11-02T05:30:00.000Z", "2025-11-02T06:30:00.000Z"]);
    expect(gapEnd(wall, NEW_YORK)).toBeNull();
  });

  test("Berlin overlap and gap (date-fns-tz gets these wrong by host zone)", () => {
    expect(resolveWallTime({ year: 2025, month: 10, day: 26, hour: 2, minute: 30 }, BERLIN).map(iso)).toEqual([
      "2025-10-26T00:30:00.000Z",
      "2025-10-26T01:30:00.000Z",
    ]);
    expect(resolveWallTime({ year: 2025, month: 3, day: 30, hour: 2, minute: 30 }, BERLIN)).toEqual([]);
  });

  test("an ordinary time has exactly one instant", () => {
    expect(resolveWallTime({ year: 2025, month: 6, day: 1, hour: 12, minute: 0 }, NEW_YORK).map(iso)).toEqual([
      "2025-06-01T16:00:00.000Z",
    ]);
  });

  test("Lord Howe's 2025 transitions, as Intl reports them", () => {
    const fall = findTransition(ms("2025-04-04T00:00:00Z"), ms("2025-04-07T00:00:00Z"), LORD_HOWE)!;
    const spring = findTransition(ms("2025-10-03T00:00:00Z"), ms("2025-10-06T00:00:00Z"), LORD_HOWE)!;
    expect(iso(fall)).toBe("2025-04-05T15:00:00.000Z");
    expect(iso(spring)).toBe("2025-10-04T15:30:00.000Z");
    expect(zoneOffsetMs(fall - 1000, LORD_HOWE) / 60_000).toBe(11 * 60);
    expect(zoneOffsetMs(fall, LORD_HOWE) / 60_000).toBe(10 * 60 + 30);
    expect(displayTime(spring, LORD_HOWE)).toBe("2025-10-05 02:30:00 (+11:00)");
    expect(resolveWallTime({ year: 2025, month: 10, day: 5, hour: 2, minute: 15 }, LORD_HOWE)).toEqual([]);
    expect(resolveWallTime({ year: 2025, month: 4, day: 6, hour: 1, minute: 45 }, LORD_HOWE)).toHaveLength(2);
  });

  test("displayTime shows the offset change", () => {
    expect(displayTime(ms("2025-03-09T06:59:59Z"), NEW_YORK)).toBe("2025-03-09 01:59:59 EST (-05:00)");
    expect(displayTime(ms("2025-03-09T07:00:00Z"), NEW_YORK)).toBe("2025-03-09 03:00:00 EDT (-04:00)");
  });
});
