/**
 * The day-walking search in `next.ts` checked against brute force, around real transitions in
 * zones with odd rules: midnight changes (Santiago, Havana, Beirut, São Paulo 2018, whose fall-back
 * repeats the previous day's 23:00 hour), fall-backs across midnight (St. John's 2009, Casey 2010),
 * 30-minute DST (Lord Howe), a 2-hour DST (Troll), a 45-minute zone (Chatham), Ramadan suspensions
 * (Casablanca) and Samoa skipping 2011-12-30.
 *
 * The oracles follow DESIGN §3 literally: wildcard-hour jobs fire at every minute whose wall time
 * matches; fixed-hour jobs fire once per matching local day and wall time, at its first instant, or
 * at the end of the gap when it has none.
 */
import { describe, expect, test } from "bun:test";
import type { Schedule } from "../../src/jobs/types.ts";
import { parseCron, type CronExpression } from "../../src/schedule/cron.ts";
import { firesBetween, nextFires } from "../../src/schedule/next.ts";
import {
  findTransition,
  gapEnd,
  resolveWallTime,
  wallParts,
  zoneOffsetMs,
  type WallParts,
} from "../../src/schedule/zone.ts";

const MINUTE = 60_000;
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

interface Window {
  tz: string;
  from: number;
  to: number;
}

/** Windows of ±2 days around each offset change of `tz` in [fromIso, toIso). */
function transitionWindows(tz: string, fromIso: string, toIso: string): Window[] {
  const windows: Window[] = [];
  const end = Date.parse(toIso);
  for (let probe = Date.parse(fromIso); probe < end; probe += DAY / 2) {
    if (zoneOffsetMs(probe, tz) !== zoneOffsetMs(probe + DAY / 2, tz)) {
      const transition = findTransition(probe, probe + DAY / 2, tz)!;
      windows.push({ tz, from: transition - 2 * DAY, to: transition + 2 * DAY });
    }
  }
  return windows;
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

function matches(expression: CronExpression, wall: WallParts): boolean {
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

// Wall times of every minute in a window, computed once and shared by the wildcard expressions.
const minuteWalls = new Map<Window, { instant: number; wall: WallParts }[]>();
function wallsOfMinutes(window: Window) {
  let walls = minuteWalls.get(window);
  if (walls === undefined) {
    walls = [];
    for (let t = Math.floor(window.from / MINUTE) * MINUTE + MINUTE; t <= window.to; t += MINUTE) {
      walls.push({ instant: t, wall: wallParts(t, window.tz) });
    }
    minuteWalls.set(window, walls);
  }
  return walls;
}

function wildcardOracle(expression: CronExpression, window: Window): number[] {
  return wallsOfMinutes(window)
    .filter(({ wall }) => matches(expression, wall))
    .map(({ instant }) => instant);
}

function fixedOracle(expression: CronExpression, window: Window): number[] {
  const fires = new Set<number>();
  const first = wallParts(window.from - DAY, window.tz);
  for (let day = Date.UTC(first.year, first.month - 1, first.day); day <= window.to + 2 * DAY; day += DAY) {
    const date = new Date(day);
    const calendar = { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
    for (const hour of expression.hours) {
      for (const minute of expression.minutes) {
        const wall = { ...calendar, hour, minute, second: 0, weekday: date.getUTCDay() };
        if (!matches(expression, wall)) continue;
        const instants = resolveWallTime(wall, window.tz);
        const fire = instants[0] ?? gapEnd(wall, window.tz)!;
        if (fire > window.from && fire <= window.to) fires.add(fire);
      }
    }
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
