import { wallParts } from "./zone.ts";

type FormatInTimeZone = typeof import("date-fns-tz").formatInTimeZone;
let formatInTimeZone: FormatInTimeZone | undefined;

/**
 * date-fns-tz, loaded the first time a time is shown: loading it costs an agent about 9 MB of
 * resident memory, which an agent nobody looks at (no page load, no CLI table) never needs.
 */
function zoneFormatter(): FormatInTimeZone {
  formatInTimeZone ??= (require("date-fns-tz") as typeof import("date-fns-tz")).formatInTimeZone;
  return formatInTimeZone;
}

/**
 * A time shown to a person: local time in `tz` with its abbreviation and offset, e.g.
 * `2026-03-08 03:00:00 EDT (-04:00)`. Display only: instants are resolved by FleetCron's own
 * wall-time code (zone.ts), because date-fns-tz's `fromZonedTime` moves times in a
 * spring-forward gap an hour early.
 *
 * The date and time digits come from zone.ts too: date-fns-tz builds them as a Date in the host's
 * zone, so a wall time that falls in the host's own DST gap comes out an hour off (Lord Howe's
 * 02:30 shown as 03:30 on a host in Sydney). Its zone name and offset are read from the instant
 * itself and do not depend on the host.
 */
export function displayTime(ms: number, tz: string): string {
  const w = wallParts(ms, tz);
  const wall = `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
  // Zones without a common English abbreviation show "GMT+10:30", which the offset already says.
  const zone = zoneFormatter()(ms, tz, "zzz (xxx)").replace(/^(GMT|UTC)[+-][\d:]+ /, "");
  return `${wall} ${zone}`;
}

/** `displayTime` of an ISO instant, or "-". */
export function displayIso(iso: string | null | undefined, tz: string): string {
  return iso ? displayTime(Date.parse(iso), tz) : "-";
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, "0");
}
