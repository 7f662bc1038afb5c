/**
 * IANA zones through `Intl` with an explicit `timeZone`, never the host's local-time getters, so
 * results do not depend on the `TZ` the process runs under. date-fns-tz's `fromZonedTime` is not
 * used: it silently moves gap times an hour early and picks overlap instants by host zone
 * (README, "Time zones and DST"). Wall times are resolved explicitly instead; date-fns-tz only
 * formats zone names and offsets for people (display.ts).
 */
import {
  DAY_MS,
  SECOND_MS,
  civilFromDays,
  daysFromCivil,
  daysInMonth,
  weekdayOfDays,
} from "./calendar.ts";

/** A local date and time of day, without a zone. */
export interface WallTime {
  year: number;
  /** 1–12 */
  month: number;
  /** 1–31 */
  day: number;
  hour: number;
  minute: number;
  /** Defaults to 0 where a `WallTime` is an input. */
  second?: number;
}

/** A wall time as read at an instant. */
export interface WallParts extends Required<WallTime> {
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

// Formatting one instant costs a few µs; building a formatter costs far more, so keep one per zone.
const wallFormatters = new Map<string, Intl.DateTimeFormat>();

function wallFormatter(tz: string): Intl.DateTimeFormat {
  let formatter = wallFormatters.get(tz);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
    } catch {
      throw new Error(
        `unknown time zone "${tz}": use an IANA name such as "Europe/Berlin" or "UTC"`,
      );
    }
    wallFormatters.set(tz, formatter);
  }
  return formatter;
}

/** Whether `tz` is a time zone this runtime knows (IANA name, "UTC", or a fixed offset). */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== "string" || tz.trim() === "") return false;
  try {
    wallFormatter(tz);
    return true;
  } catch {
    return false;
  }
}

/**
 * The wall time at `ms` as milliseconds on a UTC-like axis ("wall ms"), so that wall − instant is
 * the zone's offset. Parses `format()` output ("03/09/2025, 03:00:00"), which is about twice as
 * fast as `formatToParts` and allocates no part objects.
 */
function wallMsAt(ms: number, tz: string): number {
  const text = wallFormatter(tz).format(ms);
  const n = [0, 0, 0, 0, 0, 0]; // month, day, year, hour, minute, second
  let field = -1;
  let inNumber = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i) - 48;
    if (code >= 0 && code <= 9) {
      if (!inNumber) {
        field++;
        inNumber = true;
      }
      if (field < 6) n[field] = n[field]! * 10 + code;
    } else {
      inNumber = false;
    }
  }
  const [month, day, year, hour, minute, second] = n as [
    number, number, number, number, number, number,
  ];
  const subSecond = ms - Math.floor(ms / SECOND_MS) * SECOND_MS;
  return (
    daysFromCivil(year, month, day) * DAY_MS +
    ((hour % 24) * 3600 + minute * 60 + second) * SECOND_MS +
    subSecond
  );
}

/** The zone's offset from UTC at instant `ms`, in ms (New York in summer: −14,400,000). */
export function zoneOffsetMs(ms: number, tz: string): number {
  return wallMsAt(ms, tz) - ms;
}

/** The wall time in `tz` at instant `ms`. */
export function wallParts(ms: number, tz: string): WallParts {
  const wall = wallMsAt(ms, tz);
  const days = Math.floor(wall / DAY_MS);
  const secondOfDay = Math.floor((wall - days * DAY_MS) / SECOND_MS);
  return {
    ...civilFromDays(days),
    hour: Math.floor(secondOfDay / 3600),
    minute: Math.floor(secondOfDay / 60) % 60,
    second: secondOfDay % 60,
    weekday: weekdayOfDays(days),
  };
}

/** A wall time as wall ms; throws on fields out of range (a Feb 30 must not roll into March). */
export function wallTimeToWallMs(wall: WallTime): number {
  const { year, month, day, hour, minute, second = 0 } = wall;
  const days = daysFromCivil(year, month, day);
  const valid =
    Number.isInteger(year) &&
    Number.isInteger(month) && month >= 1 && month <= 12 &&
    Number.isInteger(day) && day >= 1 && day <= daysInMonth(year, month) &&
    Number.isInteger(hour) && hour >= 0 && hour <= 23 &&
    Number.isInteger(minute) && minute >= 0 && minute <= 59 &&
    Number.isInteger(second) && second >= 0 && second <= 59;
  if (!valid) throw new RangeError(`not a valid wall time: ${JSON.stringify(wall)}`);
  return days * DAY_MS + (hour * 3600 + minute * 60 + second) * SECOND_MS;
}

/**
 * The instants at which `wall` is shown in `tz`, ascending: one normally, none in a spring-forward
 * gap, two in a fall-back overlap. Offsets are taken a day either side; a candidate counts only if
 * it reads back as the same wall time (README, "Time zones and DST").
 */
export function resolveWallTime(wall: WallTime, tz: string): number[] {
  const wallMs = wallTimeToWallMs(wall);
  const offsets = new Set([zoneOffsetMs(wallMs - DAY_MS, tz), zoneOffsetMs(wallMs + DAY_MS, tz)]);
  const instants: number[] = [];
  for (const offset of offsets) {
    const instant = wallMs - offset;
    if (zoneOffsetMs(instant, tz) === offset) instants.push(instant);
  }
  return instants.sort((a, b) => a - b);
}

/** For a wall time in a spring-forward gap, the first instant after the gap; null otherwise. */
export function gapEnd(wall: WallTime, tz: string): number | null {
  if (resolveWallTime(wall, tz).length > 0) return null;
  const wallMs = wallTimeToWallMs(wall);
  return findTransition(wallMs - DAY_MS, wallMs + DAY_MS, tz);
}

/**
 * The first whole second in (`fromMs`, `toMs`] whose offset differs from the offset at `fromMs`
 * (binary search: ~18 formats for a 3-day window). Assumes the offsets at the two ends differ and
 * one transition lies between them; returns null when the offsets are equal.
 */
export function findTransition(fromMs: number, toMs: number, tz: string): number | null {
  let low = Math.floor(fromMs / SECOND_MS) * SECOND_MS;
  let high = Math.ceil(toMs / SECOND_MS) * SECOND_MS;
  const offsetBefore = zoneOffsetMs(low, tz);
  if (zoneOffsetMs(high, tz) === offsetBefore) return null;
  while (high - low > SECOND_MS) {
    const mid = low + Math.floor((high - low) / (2 * SECOND_MS)) * SECOND_MS;
    if (zoneOffsetMs(mid, tz) === offsetBefore) low = mid;
    else high = mid;
  }
  return high;
}
