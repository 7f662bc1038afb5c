/**
 * A step's `when` conditions, read against the occurrence's wall time in the job's zone (not the
 * time the step happens to start: a run that began at 11:59:59 still belongs to its 11:59 slot).
 */
import type { When } from "../jobs/types.ts";

/** Local wall time of an occurrence. */
export interface WallParts {
  year: number;
  /** 1–12 */
  month: number;
  /** 1–31 */
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday … 6 = Saturday */
  weekday: number;
}

type WhenKey = keyof When;

const FIELDS: [WhenKey, (wall: WallParts) => number][] = [
  ["month_in", (w) => w.month],
  ["day_in", (w) => w.day],
  ["weekday_in", (w) => w.weekday],
  ["hour_in", (w) => w.hour],
  ["minute_in", (w) => w.minute],
];

export function whenMatches(when: When | undefined, wall: WallParts): boolean {
  return whenMismatch(when, wall) === null;
}

/**
 * Why `when` does not match, for the skipped step's record, or null when it matches. Every listed
 * key must contain the wall value, read literally: an empty list matches nothing (rather than
 * everything), so a list emptied by mistake skips the step instead of firing it every time.
 */
export function whenMismatch(when: When | undefined, wall: WallParts): string | null {
  if (!when) return null;
  for (const [key, part] of FIELDS) {
    const allowed = when[key];
    if (allowed === undefined) continue;
    const value = part(wall);
    // Cron accepts 7 for Sunday, so users will write it.
    const normalised = key === "weekday_in" ? allowed.map((v) => (v === 7 ? 0 : v)) : allowed;
    if (!normalised.includes(value)) return `when.${key} [${allowed.join(", ")}] does not include ${value}`;
  }
  return null;
}
