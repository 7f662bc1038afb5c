/**
 * A schedule read on the wall clock (cron, or the seed's hour/minute), compiled into lookup
 * tables so "the next matching time of day" is a few array reads instead of a scan.
 */
import type { Schedule } from "../jobs/types.ts";
import { DAY_SECONDS, civilFromDays, daysInMonth, weekdayOfDays } from "./calendar.ts";
import { parseCron, type CronExpression } from "./cron.ts";

export class WallPattern {
  /** Follows the wall clock across DST changes instead of firing once per local day. */
  readonly hourWildcard: boolean;
  private readonly nextHour: Int8Array;
  private readonly nextMinute: Int8Array;
  private readonly nextSecond: Int8Array;
  private readonly prevHour: Int8Array;
  private readonly prevMinute: Int8Array;
  private readonly prevSecond: Int8Array;
  private readonly firstMinute: number;
  private readonly firstSecond: number;
  private readonly lastMinute: number;
  private readonly lastSecond: number;
  private readonly hourSet: Uint8Array;
  private readonly minuteSet: Uint8Array;
  private readonly monthSet: Uint8Array;
  private readonly dayOfMonthSet: Uint8Array;
  private readonly dayOfWeekSet: Uint8Array;
  private readonly dayOfMonthRestricted: boolean;
  private readonly dayOfWeekRestricted: boolean;

  constructor(expression: CronExpression) {
    this.hourWildcard = expression.hourWildcard;
    this.hourSet = membership(expression.hours, 24);
    this.minuteSet = membership(expression.minutes, 60);
    this.monthSet = membership(expression.months, 13);
    this.dayOfMonthSet = membership(expression.daysOfMonth, 32);
    this.dayOfWeekSet = membership(expression.daysOfWeek, 7);
    this.dayOfMonthRestricted = expression.dayOfMonthRestricted;
    this.dayOfWeekRestricted = expression.dayOfWeekRestricted;
    this.nextHour = nextTable(expression.hours, 24);
    this.nextMinute = nextTable(expression.minutes, 60);
    this.nextSecond = nextTable(expression.seconds, 60);
    this.prevHour = prevTable(expression.hours, 24);
    this.prevMinute = prevTable(expression.minutes, 60);
    this.prevSecond = prevTable(expression.seconds, 60);
    this.firstMinute = expression.minutes[0]!;
    this.firstSecond = expression.seconds[0]!;
    this.lastMinute = expression.minutes.at(-1)!;
    this.lastSecond = expression.seconds.at(-1)!;
  }

  /** The first local day (days since 1970-01-01) in [`from`, `to`] it fires on, or null. */
  nextMatchingDay(from: number, to: number): number | null {
    let days = from;
    let { year, month, day } = civilFromDays(days);
    let weekday = weekdayOfDays(days);
    while (days <= to) {
      if (this.monthSet[month] !== 0 && this.dayMatches(day, weekday)) return days;
      const monthLength = daysInMonth(year, month);
      // Months the pattern never fires in are skipped whole (`0 0 29 2 *` looks years ahead).
      const advance = this.monthSet[month] === 0 ? monthLength - day + 1 : 1;
      days += advance;
      weekday = (weekday + advance) % 7;
      day += advance;
      if (day > monthLength) {
        day = 1;
        month = month === 12 ? 1 : month + 1;
        if (month === 1) year++;
      }
    }
    return null;
  }

  /** The last local day in [`downTo`, `from`] the pattern fires on, or null. */
  prevMatchingDay(from: number, downTo: number): number | null {
    let days = from;
    let { year, month, day } = civilFromDays(days);
    let weekday = weekdayOfDays(days);
    while (days >= downTo) {
      if (this.monthSet[month] !== 0 && this.dayMatches(day, weekday)) return days;
      const retreat = this.monthSet[month] === 0 ? day : 1;
      days -= retreat;
      weekday = (((weekday - retreat) % 7) + 7) % 7;
      day -= retreat;
      if (day < 1) {
        month = month === 1 ? 12 : month - 1;
        if (month === 12) year--;
        day = daysInMonth(year, month);
      }
    }
    return null;
  }

  /** Vixie: when both day fields are restricted a day matches if either does, else both must. */
  private dayMatches(dayOfMonth: number, weekday: number): boolean {
    const byMonthDay = this.dayOfMonthSet[dayOfMonth] === 1;
    const byWeekday = this.dayOfWeekSet[weekday] === 1;
    if (this.dayOfMonthRestricted && this.dayOfWeekRestricted) return byMonthDay || byWeekday;
    return byMonthDay && byWeekday;
  }

  /** The first matching second of the day at or after `fromSecond`, or -1. */
  nextTimeOfDay(fromSecond: number): number {
    const from = Math.max(0, fromSecond);
    if (from >= DAY_SECONDS) return -1;
    const hour = Math.floor(from / 3600);
    const minute = Math.floor(from / 60) % 60;
    const second = from % 60;
    if (this.hourSet[hour] === 1) {
      if (this.minuteSet[minute] === 1) {
        const s = this.nextSecond[second]!;
        if (s >= 0) return hour * 3600 + minute * 60 + s;
      }
      const m = this.nextMinute[minute + 1]!;
      if (m >= 0) return hour * 3600 + m * 60 + this.firstSecond;
    }
    const h = this.nextHour[hour + 1]!;
    return h < 0 ? -1 : h * 3600 + this.firstMinute * 60 + this.firstSecond;
  }

  /** The last matching second of the day at or before `toSecond`, or -1. */
  prevTimeOfDay(toSecond: number): number {
    const to = Math.min(DAY_SECONDS - 1, toSecond);
    if (to < 0) return -1;
    const hour = Math.floor(to / 3600);
    const minute = Math.floor(to / 60) % 60;
    const second = to % 60;
    if (this.hourSet[hour] === 1) {
      if (this.minuteSet[minute] === 1) {
        const s = this.prevSecond[second]!;
        if (s >= 0) return hour * 3600 + minute * 60 + s;
      }
      const m = minute > 0 ? this.prevMinute[minute - 1]! : -1;
      if (m >= 0) return hour * 3600 + m * 60 + this.lastSecond;
    }
    const h = hour > 0 ? this.prevHour[hour - 1]! : -1;
    return h < 0 ? -1 : h * 3600 + this.lastMinute * 60 + this.lastSecond;
  }
}

function membership(values: readonly number[], size: number): Uint8Array {
  const set = new Uint8Array(size);
  for (const v of values) set[v] = 1;
  return set;
}

/** table[v] = smallest listed value ≥ v, or -1; one extra slot so `v + 1` never overflows. */
function nextTable(values: readonly number[], size: number): Int8Array {
  const table = new Int8Array(size + 1).fill(-1);
  const set = membership(values, size);
  for (let v = size - 1, next = -1; v >= 0; v--) {
    if (set[v] === 1) next = v;
    table[v] = next;
  }
  return table;
}

/** table[v] = largest listed value ≤ v, or -1. */
function prevTable(values: readonly number[], size: number): Int8Array {
  const table = new Int8Array(size).fill(-1);
  const set = membership(values, size);
  for (let v = 0, prev = -1; v < size; v++) {
    if (set[v] === 1) prev = v;
    table[v] = prev;
  }
  return table;
}

/** The seed's `{hour, minute}` as the cron expression it means, at second 0. */
export function hourMinuteExpression(hour: number | null, minute: number): CronExpression {
  if (!Number.isInteger(minute) || minute < 0 || minute > 59) {
    throw new Error(`minute ${minute}: must be 0-59`);
  }
  if (hour !== null && (!Number.isInteger(hour) || hour < 0 || hour > 23)) {
    throw new Error(`hour ${hour}: must be 0-23, or null for every hour`);
  }
  const source = `${minute} ${hour ?? "*"} * * *`;
  return parseCron(source);
}

type WallSchedule = Exclude<Schedule, { kind: "every" } | { kind: "at" }>;

// Compiled patterns by schedule object (no key to build on the hot path), then by text, so a job
// reloaded from the store as a fresh object does not recompile. The object entry remembers its
// text, so a schedule edited in place is recompiled rather than served stale.
const byObject = new WeakMap<WallSchedule, { key: string; pattern: WallPattern }>();
const byText = new Map<string, WallPattern>();
const BY_TEXT_LIMIT = 50_000;

function scheduleKey(schedule: WallSchedule): string {
  return schedule.kind === "cron" ? schedule.expression : `${schedule.hour}:${schedule.minute}`;
}

/** The compiled pattern of a wall-clock schedule (cached); throws if the cron text is invalid. */
export function wallPatternOf(schedule: WallSchedule): WallPattern {
  const cached = byObject.get(schedule);
  if (cached !== undefined && cached.key === scheduleKey(schedule)) return cached.pattern;
  const key = scheduleKey(schedule);
  const textKey = `${schedule.kind}:${key}`;
  let pattern = byText.get(textKey);
  if (pattern === undefined) {
    const expression =
      schedule.kind === "cron"
        ? parseCron(schedule.expression)
        : hourMinuteExpression(schedule.hour, schedule.minute);
    pattern = new WallPattern(expression);
    if (byText.size >= BY_TEXT_LIMIT) byText.clear();
    byText.set(textKey, pattern);
  }
  byObject.set(schedule, { key, pattern });
  return pattern;
}
