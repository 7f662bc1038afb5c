/**
 * When a schedule fires, as UTC instants (ms). Pure: time comes in as arguments, never from a
 * clock.
 *
 * Wall-clock schedules follow the Vixie cron rule (README, "Time zones and DST"). A fixed-hour job fires once per
 * local day: a wall time in a spring-forward gap fires at the first instant after the gap, one in
 * a fall-back overlap fires at its first occurrence. A wildcard-hour job follows the wall clock:
 * repeated times fire twice, skipped times never. Gap times that collapse onto the same instant
 * fire once, because every search returns instants strictly after (or before) the last one.
 *
 * The search walks local days, not minutes: per matching day it maps the day's wall times to
 * instants with that day's offsets (cached per zone), and finds the wanted time of day in lookup
 * tables, so a call costs about the same for `* * * * * *` as for `0 9 * * 1`.
 */
import type { Schedule } from "../jobs/types.ts";
import { DAY_MS, SECOND_MS } from "./calendar.ts";
import { dayOffsets, type DayOffsets } from "./day-offsets.ts";
import { atInstant } from "./at.ts";
import { formatEvery } from "./every.ts";
import { wallPatternOf, type WallPattern } from "./wall-pattern.ts";

/** Days a search looks ahead (or back) before deciding a schedule never fires (`0 0 30 2 *`). */
export const SEARCH_DAYS = 8 * 366;

// A local day's instants lie within ±14 h of its wall times (the widest offsets in use), so a day
// further than this from a bound cannot hold an instant on the bound's side.
const DAY_REACH = 2;

/** The first fire instant strictly after `afterMs`, or null if none within `SEARCH_DAYS`. */
export function nextFireAfter(schedule: Schedule, tz: string, afterMs: number): number | null {
  checkInstant(afterMs);
  if (schedule.kind === "every") {
    checkInterval(schedule.ms);
    return (Math.floor(afterMs / schedule.ms) + 1) * schedule.ms;
  }
  if (schedule.kind === "at") {
    const at = atInstant(schedule, tz);
    return at > afterMs ? at : null;
  }
  // Fire instants are whole seconds, so "> after" is "> floor(after)".
  const after = Math.floor(afterMs);
  const pattern = wallPatternOf(schedule);
  const firstDay = Math.floor(after / DAY_MS) - DAY_REACH;
  let lastDay = firstDay + SEARCH_DAYS;
  let best: number | null = null;
  for (
    let day = pattern.nextMatchingDay(firstDay, lastDay);
    day !== null;
    day = pattern.nextMatchingDay(day + 1, lastDay)
  ) {
    const fire = firstFireOfDayAfter(pattern, day, dayOffsets(tz, day), after);
    if (fire === null) continue;
    if (best === null || fire < best) best = fire;
    // A fall-back across midnight can show a wall time of the next day before one of this day,
    // so the day after the first hit is checked too, and no further.
    lastDay = Math.min(lastDay, day + 1);
  }
  return best;
}

/** The last fire instant strictly before `beforeMs`, or null if none within `SEARCH_DAYS`. */
export function previousFireBefore(
  schedule: Schedule,
  tz: string,
  beforeMs: number,
): number | null {
  return previousFireWithin(schedule, tz, beforeMs, -Infinity);
}

/** The next `count` fire instants after `afterMs`, ascending (fewer if the schedule runs out). */
export function nextFires(
  schedule: Schedule,
  tz: string,
  afterMs: number,
  count: number,
): number[] {
  const fires: number[] = [];
  let cursor = afterMs;
  while (fires.length < count) {
    const fire = nextFireAfter(schedule, tz, cursor);
    if (fire === null) break;
    fires.push(fire);
    cursor = fire;
  }
  return fires;
}

/**
 * Fire instants in (`fromExclusiveMs`, `toInclusiveMs`], ascending. When there are more than
 * `cap`, the last `cap` are returned: catch-up cares about the most recent occurrences.
 */
export function firesBetween(
  schedule: Schedule,
  tz: string,
  fromExclusiveMs: number,
  toInclusiveMs: number,
  cap: number,
): number[] {
  const fires: number[] = [];
  // Fire instants are whole ms, so "≤ to" is "< floor(to) + 1".
  let before = Math.floor(toInclusiveMs) + 1;
  while (fires.length < cap) {
    const fire = previousFireWithin(schedule, tz, before, fromExclusiveMs);
    if (fire === null || fire <= fromExclusiveMs) break;
    fires.push(fire);
    before = fire;
  }
  return fires.reverse();
}

/** Short description: `every hour at :00`, `daily at 09:30`, `cron 0 9 * * 1-5`, `every 30s`, `once at …`. */
export function describeSchedule(schedule: Schedule): string {
  switch (schedule.kind) {
    case "hour-minute":
      return schedule.hour === null
        ? `every hour at :${pad(schedule.minute)}`
        : `daily at ${pad(schedule.hour)}:${pad(schedule.minute)}`;
    case "cron":
      return `cron ${schedule.expression}`;
    case "every":
      return `every ${schedule.text || formatEvery(schedule.ms)}`;
    case "at":
      return `once at ${schedule.text}`;
  }
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}

function checkInstant(ms: number): void {
  if (!Number.isFinite(ms)) throw new RangeError(`not a finite instant: ${ms}`);
}

function checkInterval(ms: number): void {
  // A zero or fractional interval would make callers that iterate fires loop forever.
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new RangeError(`every: invalid interval ${ms} ms`);
  }
}

/** Last fire before `beforeMs`, giving up before `limitMs` (an instant) or past `SEARCH_DAYS`. */
function previousFireWithin(
  schedule: Schedule,
  tz: string,
  beforeMs: number,
  limitMs: number,
): number | null {
  checkInstant(beforeMs);
  if (schedule.kind === "every") {
    checkInterval(schedule.ms);
    return (Math.ceil(beforeMs / schedule.ms) - 1) * schedule.ms;
  }
  if (schedule.kind === "at") {
    const at = atInstant(schedule, tz);
    return at < beforeMs && at > limitMs ? at : null;
  }
  const before = Math.ceil(beforeMs);
  const pattern = wallPatternOf(schedule);
  const firstDay = Math.floor(before / DAY_MS) + DAY_REACH;
  let lastDay = Math.max(firstDay - SEARCH_DAYS, Math.floor(limitMs / DAY_MS) - DAY_REACH);
  let best: number | null = null;
  for (
    let day = pattern.prevMatchingDay(firstDay, lastDay);
    day !== null;
    day = pattern.prevMatchingDay(day - 1, lastDay)
  ) {
    const fire = lastFireOfDayBefore(pattern, day, dayOffsets(tz, day), before);
    if (fire === null) continue;
    if (best === null || fire > best) best = fire;
    lastDay = Math.max(lastDay, day - 1); // as in nextFireAfter, one more day and no further
  }
  return best;
}

/*
 * One local day around an offset change at instant T, in wall ms (wall time on a UTC axis):
 *   firstSideEnd    = T + before: wall times below it are shown before the change;
 *   secondSideStart = T + after:  wall times from it on are shown after the change.
 * Spring forward: firstSideEnd < secondSideStart, and the wall times between are the gap.
 * Fall back: secondSideStart < firstSideEnd, and the wall times between are shown twice.
 * A fixed-hour job takes an overlap time on the first side only, and a gap time at T.
 */

/** The day's first fire strictly after `after`, or null. */
function firstFireOfDayAfter(
  pattern: WallPattern,
  day: number,
  offsets: DayOffsets,
  after: number,
): number | null {
  const dayStart = day * DAY_MS;
  const { before, after: afterOffset, transition } = offsets;
  if (transition === null) {
    const wall = firstWall(pattern, dayStart, after + 1 + before, Infinity);
    return wall === null ? null : wall - before;
  }
  const firstSideEnd = transition + before;
  const secondSideStart = transition + afterOffset;
  const secondSideFrom = pattern.hourWildcard
    ? secondSideStart
    : Math.max(secondSideStart, firstSideEnd);

  let best: number | null = null;
  const firstSide = firstWall(pattern, dayStart, after + 1 + before, firstSideEnd);
  if (firstSide !== null) best = firstSide - before;
  const secondSideLow = Math.max(after + 1 + afterOffset, secondSideFrom);
  const secondSide = firstWall(pattern, dayStart, secondSideLow, Infinity);
  if (secondSide !== null && (best === null || secondSide - afterOffset < best)) {
    best = secondSide - afterOffset;
  }
  if (
    !pattern.hourWildcard &&
    transition > after &&
    (best === null || transition < best) &&
    firstWall(pattern, dayStart, firstSideEnd, secondSideStart) !== null
  ) {
    best = transition;
  }
  return best;
}

/** The day's last fire strictly before `before`, or null. */
function lastFireOfDayBefore(
  pattern: WallPattern,
  day: number,
  offsets: DayOffsets,
  beforeMs: number,
): number | null {
  const dayStart = day * DAY_MS;
  const { before, after, transition } = offsets;
  if (transition === null) {
    const wall = lastWall(pattern, dayStart, -Infinity, beforeMs - 1 + before);
    return wall === null ? null : wall - before;
  }
  const firstSideEnd = transition + before;
  const secondSideStart = transition + after;
  const secondSideFrom = pattern.hourWildcard
    ? secondSideStart
    : Math.max(secondSideStart, firstSideEnd);

  let best: number | null = null;
  const secondSide = lastWall(pattern, dayStart, secondSideFrom, beforeMs - 1 + after);
  if (secondSide !== null) best = secondSide - after;
  const firstSideHigh = Math.min(beforeMs - 1 + before, firstSideEnd - 1);
  const firstSide = lastWall(pattern, dayStart, -Infinity, firstSideHigh);
  if (firstSide !== null && (best === null || firstSide - before > best)) best = firstSide - before;
  if (
    !pattern.hourWildcard &&
    transition < beforeMs &&
    (best === null || transition > best) &&
    firstWall(pattern, dayStart, firstSideEnd, secondSideStart) !== null
  ) {
    best = transition;
  }
  return best;
}

/** The first matching wall time of the day in [`fromWall`, `untilWall`), or null. */
function firstWall(
  pattern: WallPattern,
  dayStart: number,
  fromWall: number,
  untilWall: number,
): number | null {
  const secondOfDay = pattern.nextTimeOfDay(Math.ceil((fromWall - dayStart) / SECOND_MS));
  if (secondOfDay < 0) return null;
  const wall = dayStart + secondOfDay * SECOND_MS;
  return wall < untilWall ? wall : null;
}

/** The last matching wall time of the day in [`fromWall`, `toWall`], or null. */
function lastWall(
  pattern: WallPattern,
  dayStart: number,
  fromWall: number,
  toWall: number,
): number | null {
  const secondOfDay = pattern.prevTimeOfDay(Math.floor((toWall - dayStart) / SECOND_MS));
  if (secondOfDay < 0) return null;
  const wall = dayStart + secondOfDay * SECOND_MS;
  return wall >= fromWall ? wall : null;
}
