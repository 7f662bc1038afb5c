/**
 * Bounds how many attempts one agent runs at once (`max_concurrent_runs`); waiters queue in order
 * and give up when their signal aborts (the caller bounds the wait: docs/protocol.md, "Slots").
 */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private limit: number) {}

  /** A new `max_concurrent_runs` (reload-config): waiters and running attempts carry over. */
  resize(limit: number): void {
    this.limit = limit;
    while (this.used < this.limit && this.waiting.length > 0) {
      this.used++;
      this.waiting.shift()!();
    }
  }

  get inUse(): number {
    return this.used;
  }

  get size(): number {
    return this.limit;
  }

  /** Attempts waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /** True once a slot is held; false when `signal` aborted first (no slot is held then). */
  async acquire(signal?: AbortSignal): Promise<boolean> {
    if (this.used < this.limit) {
      this.used++;
      return true;
    }
    if (signal?.aborted) return false;
    return new Promise<boolean>((resolve) => {
      const grant = () => {
        signal?.removeEventListener("abort", giveUp);
        resolve(true);
      };
      const giveUp = () => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve(false);
      };
      this.waiting.push(grant);
      signal?.addEventListener("abort", giveUp, { once: true });
    });
  }

  release(): void {
    if (this.used <= this.limit) {
      const next = this.waiting.shift();
      if (next) return next();
    }
    this.used--;
  }
}
