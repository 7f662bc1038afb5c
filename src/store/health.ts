import type { Logger } from "../core/logger.ts";

/**
 * Tracks whether the store answers, so an outage is logged once when it starts and once when it
 * ends — not once per tick — and the agent knows when to run its outage catch-up.
 */
export class StoreHealth {
  private downSince: number | null = null;
  private failures = 0;

  constructor(private readonly log: Logger) {}

  get isDown(): boolean {
    return this.downSince !== null;
  }

  /** Backoff before the next heartbeat while the store is down: 1 s, 2 s, 4 s … capped. */
  retryDelayMs(capMs: number): number {
    return Math.min(capMs, 1000 * 2 ** Math.min(this.failures - 1, 10));
  }

  failed(now: number, error: unknown): void {
    this.failures++;
    if (this.downSince !== null) return;
    this.downSince = now;
    this.log.error(`store unreachable: ${(error as Error)?.message ?? String(error)}; the agent keeps running, fires nothing it cannot claim, and retries with backoff`);
  }

  /** Returns the outage's start when this success ends one. */
  succeeded(now: number): number | null {
    this.failures = 0;
    const since = this.downSince;
    if (since === null) return null;
    this.downSince = null;
    this.log.success(`store reachable again after ${((now - since) / 1000).toFixed(1)} s`);
    return since;
  }
}
