/**
 * The UTC offsets that apply to one local day, cached per zone: in the steady state the scheduler
 * maps wall times to instants with plain arithmetic and never calls `Intl`.
 */
import { DAY_MS } from "./calendar.ts";
import { findTransition, zoneOffsetMs } from "./zone.ts";

export interface DayOffsets {
  /** Offset (wall − UTC, ms) before the transition, or all day when there is none. */
  before: number;
  /** Offset from `transition` on. */
  after: number;
  /** The instant the offset changes, or null when it does not change near this day. */
  transition: number | null;
}

const cacheByZone = new Map<string, Map<number, DayOffsets>>();
// Offsets at 00:00 UTC of each day, shared by the three days that probe them.
const probesByZone = new Map<string, Map<number, number>>();
// Enough for every zone's next few years; cleared wholesale rather than tracked as an LRU.
const DAYS_PER_ZONE_LIMIT = 20_000;

function cacheFor<V>(caches: Map<string, Map<number, V>>, tz: string): Map<number, V> {
  let cache = caches.get(tz);
  if (cache === undefined) {
    cache = new Map();
    caches.set(tz, cache);
  } else if (cache.size >= DAYS_PER_ZONE_LIMIT) {
    cache.clear();
  }
  return cache;
}

function probeOffset(tz: string, days: number): number {
  const cache = cacheFor(probesByZone, tz);
  let offset = cache.get(days);
  if (offset === undefined) {
    offset = zoneOffsetMs(days * DAY_MS, tz);
    cache.set(days, offset);
  }
  return offset;
}

/**
 * Offsets for the local day `days` (days since 1970-01-01). A day's instants lie within 14 h of its
 * wall times, so probing a full day either side covers them. Assumes at most one transition in
 * those three days: checked for all 445 ICU zones from 1970 to 2040 (transitions are weeks apart).
 */
export function dayOffsets(tz: string, days: number): DayOffsets {
  const cache = cacheFor(cacheByZone, tz);
  let offsets = cache.get(days);
  if (offsets === undefined) {
    const before = probeOffset(tz, days - 1);
    const after = probeOffset(tz, days + 2);
    const transition =
      before === after ? null : findTransition((days - 1) * DAY_MS, (days + 2) * DAY_MS, tz);
    offsets = { before, after, transition };
    cache.set(days, offsets);
  }
  return offsets;
}
