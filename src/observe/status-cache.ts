import type { Clock } from "../core/clock.ts";

/**
 * What the status page shows, gathered at most once per `maxAgeMs` and never twice at a time:
 * however many pages load at once, the store answers one gathering (an agent whose store is busy
 * answering page loads misses its own heartbeat and the fleet counts it dead). A failed gathering
 * is not kept: the next load tries again, still one at a time.
 */
export class StatusCache<T> {
  private last: { at: number; data: T } | null = null;
  private gathering: Promise<{ at: number; data: T }> | null = null;

  constructor(
    private readonly gather: (now: number) => Promise<T>,
    private readonly clock: Clock,
    private readonly maxAgeMs = 5000,
  ) {}

  /** The data and the instant it was gathered at. */
  get(): Promise<{ at: number; data: T }> {
    const now = this.clock.now();
    if (this.last && now - this.last.at < this.maxAgeMs) return Promise.resolve(this.last);
    this.gathering ??= this.gather(now)
      .then((data) => (this.last = { at: now, data }))
      .finally(() => (this.gathering = null));
    return this.gathering;
  }
}
