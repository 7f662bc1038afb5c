/**
 * One-time schedules (`at`): an ISO instant with an offset or `Z`, or a wall time read in the
 * job's zone under the fixed-hour DST rule (README, "Time zones and DST"): a wall time in a
 * spring-forward gap fires at the first instant after the gap, one shown twice fires at its first
 * occurrence. Resolved with FleetCron's own wall-time code (zone.ts), never date-fns-tz.
 */
import type { AtWallTime, Schedule } from "../jobs/types.ts";
import { gapEnd, resolveWallTime, wallTimeToWallMs } from "./zone.ts";

const AT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})?$/i;

export const AT_HELP = 'must be an ISO time such as "2026-12-24T18:00:00Z", "2026-12-24T18:00+01:00", or a wall time "2026-12-24T18:00" read in the job\'s tz';

export type ParsedAt = { instant: number; wall?: undefined } | { wall: AtWallTime; instant?: undefined };

/** The `at` text as an instant (it has an offset) or a wall time (it has none); null when malformed. */
export function parseAt(text: string): ParsedAt | null {
  const m = AT_PATTERN.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const wall: AtWallTime = { year: year!, month: month!, day: day!, hour: hour!, minute: minute!, second };
  let wallMs: number;
  try {
    wallMs = wallTimeToWallMs(wall);
  } catch {
    return null; // Feb 30, hour 25 …
  }
  const zone = m[8];
  if (zone === undefined) return m[7] === undefined ? { wall } : null; // a wall time is whole seconds
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, "0"));
  if (zone.toUpperCase() === "Z") return { instant: wallMs + ms };
  const sign = zone.startsWith("-") ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4));
  if (Number(digits.slice(2, 4)) > 59 || offsetMin > 18 * 60) return null;
  return { instant: wallMs + ms - sign * offsetMin * 60_000 };
}

/** The instant a one-time schedule fires in `tz` (the zone matters only for a wall time). */
export function atInstant(schedule: Extract<Schedule, { kind: "at" }>, tz: string): number {
  if (schedule.instant !== undefined) return schedule.instant;
  const wall = schedule.wall!;
  return resolveWallTime(wall, tz)[0] ?? gapEnd(wall, tz) ?? wallTimeToWallMs(wall);
}
