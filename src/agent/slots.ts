/** Bounds how many attempts one agent runs at once (`max_concurrent_runs`); waiters queue in order. */
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

  async acquire(): Promise<void> {
    if (this.used < this.limit) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    if (this.used <= this.limit) {
      const next = this.waiting.shift();
      if (next) return next();
    }
    this.used--;
  }
}
