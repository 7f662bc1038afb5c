import type { Clock } from "../../src/core/clock.ts";

/** Lets the event loop run what the last step made ready (store calls, promise chains). */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that moves only when told. `advance` walks time forward sleeper by sleeper, letting the
 * code under test run between steps, so a scheduler can be driven through minutes in milliseconds.
 */
export class FakeClock implements Clock {
  private sleepers: { at: number; wake: () => void }[] = [];

  constructor(private t: number) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const entry = {
        at: this.t + Math.max(0, ms),
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== entry);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sleepers.push(entry);
    });
  }

  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.t + ms);
  }

  async advanceTo(target: number): Promise<void> {
    for (let steps = 0; steps < 100_000; steps++) {
      await settle();
      const due = this.sleepers.filter((s) => s.at <= target);
      if (due.length === 0) break;
      const next = Math.min(...due.map((s) => s.at));
      this.t = Math.max(this.t, next);
      const ready = this.sleepers.filter((s) => s.at <= this.t);
      this.sleepers = this.sleepers.filter((s) => s.at > this.t);
      for (const s of ready) s.wake();
    }
    this.t = Math.max(this.t, target);
    await settle();
  }
}
