import { formatInTimeZone } from "date-fns-tz";

/**
 * A time shown to a person: local time in `tz` with its abbreviation and offset, e.g.
 * `2026-03-08 03:00:00 EDT (-04:00)`. For display only: instants are resolved by FleetCron's own
 * wall-time code (src/schedule/zone.ts), because date-fns-tz's `fromZonedTime` moves times in a
 * spring-forward gap an hour early.
 */
export function displayTime(ms: number, tz: string): string {
  const text = formatInTimeZone(ms, tz, "yyyy-MM-dd HH:mm:ss zzz (xxx)");
  // Zones without a common abbreviation show "GMT+10:30", which the offset already says.
  return text.replace(/ (GMT|UTC)[+-][\d:]+ \(/, " (");
}

/** `displayTime` of an ISO instant, or "-". */
export function displayIso(iso: string | null | undefined, tz: string): string {
  return iso ? displayTime(Date.parse(iso), tz) : "-";
}
