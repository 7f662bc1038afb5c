/**
 * `every` intervals: elapsed time written as days, hours, minutes and seconds ("90s", "1h30m").
 * Sub-second intervals are refused: a fleet-wide claim per occurrence costs a store insert.
 */

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;
const EVERY_PATTERN = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** The shortest interval accepted, in ms. */
export const MIN_EVERY_MS = 1000;

/** Interval in ms for text like "30s", "5m", "2h", "1d", "1h30m"; null when invalid or under 1s. */
export function parseEvery(text: string): number | null {
  const compact = text.trim().toLowerCase();
  const match = EVERY_PATTERN.exec(compact);
  if (compact === "" || match === null) return null;
  const [, days = "0", hours = "0", minutes = "0", seconds = "0"] = match;
  const ms =
    Number(days) * UNIT_MS.d +
    Number(hours) * UNIT_MS.h +
    Number(minutes) * UNIT_MS.m +
    Number(seconds) * UNIT_MS.s;
  return Number.isSafeInteger(ms) && ms >= MIN_EVERY_MS ? ms : null;
}

/** Canonical text for an interval, largest units first ("1h30m"); inverse of `parseEvery`. */
export function formatEvery(ms: number): string {
  let rest = Math.floor(ms / 1000) * 1000;
  let text = "";
  for (const unit of ["d", "h", "m", "s"] as const) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text === "" ? "0s" : text;
}
