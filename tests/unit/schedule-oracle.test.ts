/**
 * The day-walking search in `next.ts` checked against brute force, around real transitions in
 * zones with odd rules: midnight changes (Santiago, Havana, Beirut, São Paulo 2018, whose fall-back
 * repeats the previous day's 23:00 hour), fall-backs across midnight (St. John's 2009, Casey 2010),
 * 30-minute DST (Lord Howe), a 2-hour DST (Troll), a 45-minute zone (Chatham), Ramadan suspensions
 * (Casablanca) and Samoa skipping 2011-12-30.
 *
 * The oracles follow the README's DST rule literally: wildcard-hour jobs fire at every minute whose wall time
 * matches; fixed-hour jobs fire once per matching local day and wall time, at its first instant, or
 * at the end of the gap when it has none.
 *
 * The oracles use nothing of `src/schedule/zone.ts`: they step through the instants minute by minute
 * and read each one's wall time with `Intl.DateTimeFormat` alone, so an error in the product's zone
 * arithmetic cannot cancel out against the same error in the oracle. A few instants are written out
 * by hand as well (Lord Howe, Chatham, Kathmandu).
 */
import { describe, expect, test } from "bun:test";
import type { Schedule } from "../../src/jobs/types.ts";
import { parseCron, type CronExpression } from "../../src/schedule/cron.ts";
import { firesBetween, nextFires } from "../../src/schedule/next.ts";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const WILDCARD_EXPRESSIONS = ["30 * * * *", "0,30 * * * 6", "*/15 * * * *", "0 * * * *", "* * * * *", "0 */2 * * *", "45 * * * 0", "10,40 * 1-10 * *"];
const FIXED_EXPRESSIONS = [
  "30,59 23,0 * * *",
  "30 2 * * *",
  "0 0 * * *",
  "30 23 * * *",
  "*/20 1-3 * * *",
  "0,30 0 * * *",
  "* 2 * * *",
  "15 1 * * SUN",
  "59 23 * * *",
  "0 1 * * *",
  "30 0 * * *",
  "0 12 1,15 * MON",
];

// ---------------------------------------------------------------------------------------------
// The oracle's own clock reading: Intl only.

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock of `tz` at `instant`, as Intl shows it. */
function intlWall(instant: number, tz: string): Wall {
  let format = formatters.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      weekday: "short",
    });
    formatters.set(tz, format);
  }
  const parts: Record<string, string> = {};
  for (const part of format.formatToParts(instant)) parts[part.type] = part.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAYS.indexOf(parts.weekday!),
  };
}

/** A wall time as a number on its own UTC-like scale, so wall times can be compared and stepped. */
const wallNumber = (w: Wall) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
const intlOffset = (instant: number, tz: string) => wallNumber(intlWall(instant, tz)) - instant;

/** Windows of ±2 days around each offset change of `tz` in [fromIso, toIso), found with Intl. */
function transitionWindows(tz: string, fromIso: string, toIso: string): Window[] {
  const windows: Window[] = [];
  const end = Date.parse(toIso);
  for (let probe = Date.parse(fromIso); probe < end; probe += DAY / 2) {
    if (intlOffset(probe, tz) === intlOffset(probe + DAY / 2, tz)) continue;
    let [lo, hi] = [probe, probe + DAY / 2]; // offset(lo) differs from offset(hi): bisect to the minute
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
      if (intlOffset(mid, tz) === intlOffset(lo, tz)) lo = mid;
      else hi = mid;
    }
    windows.push({ tz, from: hi - 2 * DAY, to: hi + 2 * DAY });
  }
  return windows;
}

interface Window {
  tz: string;
  from: number;
  to: number;
}

const WINDOWS: Window[] = [
  ...transitionWindows("America/New_York", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Europe/Berlin", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Australia/Lord_Howe", "2025-01-01", "2026-01-01"),
  ...transitionWindows("America/Santiago", "2025-01-01", "2026-01-01"),
  ...transitionWindows("America/Havana", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Asia/Beirut", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Antarctica/Troll", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Pacific/Chatham", "2025-01-01", "2026-01-01"),
  ...transitionWindows("Africa/Casablanca", "2025-01-01", "2026-01-01"),
  ...transitionWindows("America/Sao_Paulo", "2018-01-01", "2019-01-01"),
  ...transitionWindows("Pacific/Apia", "2011-12-01", "2012-01-15"),
  // Fall-backs that cross midnight backwards, so a wall time of the next day is shown before one
  // of the previous day: St. John's 2009 (00:01 → 23:01), Casey 2010 (02:00 → 23:00).
  ...transitionWindows("America/St_Johns", "2009-10-01", "2009-12-01"),
  ...transitionWindows("Antarctica/Casey", "2010-03-01", "2010-03-10"),
];

function matches(expression: CronExpression, wall: Wall): boolean {
  if (!expression.months.includes(wall.month)) return false;
  const dayOfMonth = expression.daysOfMonth.includes(wall.day);
  const dayOfWeek = expression.daysOfWeek.includes(wall.weekday);
  const dayMatches =
    expression.dayOfMonthRestricted && expression.dayOfWeekRestricted
      ? dayOfMonth || dayOfWeek
      : dayOfMonth && dayOfWeek;
  return (
    dayMatches &&
    expression.hours.includes(wall.hour) &&
    expression.minutes.includes(wall.minute) &&
    expression.seconds.includes(wall.second)
  );
}

/** A wall time from its number on the wall scale (the weekday of its calendar date). */
function wallOfNumber(n: number): Wall {
  const d = new Date(n);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay() };
}

/**
 * One scan of a window, minute by minute from a day before it (so a wall time repeated after a
 * fall-back is known to be a repeat): every instant with its wall time, and every wall time with
 * the instant it is first shown or, when the clock jumps over it, the instant the jump lands on.
 */
interface Scan {
  minutes: { instant: number; wall: Wall }[];
  /** wall number → first instant showing it, or the end of the gap that skips it */
  firstOrGapEnd: Map<number, number>;
}
const scans = new Map<Window, Scan>();
function scan(window: Window): Scan {
  let result = scans.get(window);
  if (result) return result;
  result = { minutes: [], firstOrGapEnd: new Map() };
  let previous: number | undefined;
  for (let t = Math.floor((window.from - DAY) / MINUTE) * MINUTE; t <= window.to + DAY; t += MINUTE) {
    const wall = intlWall(t, window.tz);
    const n = wallNumber(wall);
    if (t > window.from) result.minutes.push({ instant: t, wall });
    // Wall minutes the clock jumped over (a gap): their fire time is the instant the jump lands on.
    if (previous !== undefined) for (let skipped = previous + MINUTE; skipped < n; skipped += MINUTE) if (!result.firstOrGapEnd.has(skipped)) result.firstOrGapEnd.set(skipped, t);
    if (!result.firstOrGapEnd.has(n)) result.firstOrGapEnd.set(n, t);
    previous = previous === undefined ? n : Math.max(previous, n);
  }
  scans.set(window, result);
  return result;
}

function wildcardOracle(expression: CronExpression, window: Window): number[] {
  return scan(window)
    .minutes.filter(({ instant, wall }) => instant <= window.to && matches(expression, wall))
    .map(({ instant }) => instant);
}

function fixedOracle(expression: CronExpression, window: Window): number[] {
  const fires = new Set<number>();
  for (const [n, fire] of scan(window).firstOrGapEnd) {
    if (fire > window.from && fire <= window.to && matches(expression, wallOfNumber(n))) fires.add(fire);
  }
  return [...fires].sort((a, b) => a - b);
}

describe.each(WINDOWS.map((w) => [`${w.tz} ${new Date(w.from + 2 * DAY).toISOString()}`, w] as const))(
  "around %s",
  (_label, window) => {
    for (const text of [...WILDCARD_EXPRESSIONS, ...FIXED_EXPRESSIONS]) {
      test(text, () => {
        const expression = parseCron(text);
        const schedule: Schedule = { kind: "cron", expression: text };
        const expected = expression.hourWildcard
          ? wildcardOracle(expression, window)
          : fixedOracle(expression, window);
        const forward = nextFires(schedule, window.tz, window.from, expected.length + 1).filter((f) => f <= window.to);
        const backward = firesBetween(schedule, window.tz, window.from, window.to, 1_000_000);
        const iso = (xs: number[]) => xs.map((x) => new Date(x).toISOString());
        expect(iso(forward)).toEqual(iso(expected));
        expect(iso(backward)).toEqual(iso(expected));
      });
    }
  },
);

test("the windows include the odd cases they are meant to", () => {
  const zones = new Set(WINDOWS.map((w) => w.tz));
  expect(zones.size).toBe(13);
  for (const tz of ["Pacific/Apia", "America/St_Johns", "Antarctica/Casey"]) {
    expect(WINDOWS.filter((w) => w.tz === tz)).toHaveLength(1);
  }
  expect(WINDOWS.length).toBeGreaterThanOrEqual(20);
});

/** Written out by hand from the zones' rules, not computed: the oracle's scan and the product must both agree. */
const HAND_WRITTEN: { tz: string; cron: string; from: string; fires: string[]; why: string }[] = [
  {
    tz: "Australia/Lord_Howe",
    cron: "15 2 * * *",
    from: "2025-10-03T00:00:00Z",
    // +10:30 → +11:00 at 02:00 on Sun 5 Oct: 02:00–02:29 do not exist, 02:15 fires at the gap's end, 02:30.
    fires: ["2025-10-03T15:45:00.000Z", "2025-10-04T15:30:00.000Z", "2025-10-05T15:15:00.000Z"],
    why: "30-minute spring-forward",
  },
  {
    tz: "Australia/Lord_Howe",
    cron: "45 1 * * *",
    from: "2025-04-04T00:00:00Z",
    // +11:00 → +10:30 at 02:00 on Sun 6 Apr: 01:30–01:59 happen twice; a fixed hour fires at the first 01:45 only.
    fires: ["2025-04-04T14:45:00.000Z", "2025-04-05T14:45:00.000Z", "2025-04-06T15:15:00.000Z"],
    why: "30-minute fall-back, fixed hour",
  },
  {
    tz: "Australia/Lord_Howe",
    cron: "45 * * * *",
    from: "2025-04-05T14:00:00Z",
    // The same night, wildcard hour: both 01:45s fire (+11:00, then +10:30), then 02:45.
    fires: ["2025-04-05T14:45:00.000Z", "2025-04-05T15:15:00.000Z", "2025-04-05T16:15:00.000Z"],
    why: "30-minute fall-back, wildcard hour",
  },
  {
    tz: "Pacific/Chatham",
    cron: "0 3 * * *",
    from: "2025-09-26T00:00:00Z",
    // +12:45 → +13:45 at 02:45 on Sun 28 Sep: 03:00 does not exist and fires at 03:45.
    fires: ["2025-09-26T14:15:00.000Z", "2025-09-27T14:00:00.000Z", "2025-09-28T13:15:00.000Z"],
    why: "45-minute zone, spring-forward",
  },
  {
    tz: "Pacific/Chatham",
    cron: "15 3 * * *",
    from: "2025-04-04T00:00:00Z",
    // +13:45 → +12:45 at 03:45 on Sun 6 Apr: 03:15 happens twice, fires at the first.
    fires: ["2025-04-04T13:30:00.000Z", "2025-04-05T13:30:00.000Z", "2025-04-06T14:30:00.000Z"],
    why: "45-minute zone, fall-back",
  },
  {
    tz: "Asia/Kathmandu",
    cron: "0 9 * * *",
    from: "2025-06-01T00:00:00Z",
    fires: ["2025-06-01T03:15:00.000Z", "2025-06-02T03:15:00.000Z"],
    why: "+05:45, no DST",
  },
  {
    tz: "Asia/Kathmandu",
    cron: "10 0 * * *",
    from: "1985-12-30T00:00:00Z",
    // +05:30 → +05:45 at midnight on 1 Jan 1986: 00:00–00:14 do not exist, 00:10 fires at 00:15.
    fires: ["1985-12-30T18:40:00.000Z", "1985-12-31T18:30:00.000Z", "1986-01-01T18:25:00.000Z"],
    why: "the 1986 change to +05:45",
  },
];

describe("hand-written instants in odd zones", () => {
  for (const { tz, cron, from, fires, why } of HAND_WRITTEN) {
    test(`${tz} "${cron}" from ${from} (${why})`, () => {
      const start = Date.parse(from);
      const end = Date.parse(fires[fires.length - 1]!);
      const iso = (xs: number[]) => xs.map((x) => new Date(x).toISOString());
      expect(iso(nextFires({ kind: "cron", expression: cron }, tz, start, fires.length))).toEqual(fires);
      expect(iso(firesBetween({ kind: "cron", expression: cron }, tz, start, end, 100))).toEqual(fires);
      // The oracle itself agrees with the hand-written table.
      const window = { tz, from: start, to: end };
      const expression = parseCron(cron);
      expect(iso(expression.hourWildcard ? wildcardOracle(expression, window) : fixedOracle(expression, window))).toEqual(fires);
    });
  }
});
