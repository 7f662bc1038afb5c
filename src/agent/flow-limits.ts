import type { FlowLimit } from "../config/load.ts";
import type { Clock } from "../core/clock.ts";

/**
 * Flow control for jobs that share a config `limits` entry (docs/protocol.md, "Flow control"): at
 * most `parallel` attempts in flight and at most `rate.count` starts in any `rate.perMs` window.
 * Enforced by one agent: placement routes every job of a limit to the same owner, so the bound
 * holds fleet-wide without a shared counter. Waiters are served in the order they asked.
 */
export class FlowLimits {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private limits: Record<string, FlowLimit>,
    private readonly clock: Clock,
  ) {}

  /** New limits (reload-config): attempts in flight and starts already counted carry over. */
  update(limits: Record<string, FlowLimit>): void {
    this.limits = limits;
    for (const lane of this.lanes.values()) lane.wakeAll();
  }

  has(key: string): boolean {
    // Own keys only: a limit named "constructor" must not find Object.prototype's.
    return Object.hasOwn(this.limits, key);
  }

  /**
   * Waits for a permit of `key`; resolves with the time waited and the release to call when the
   * attempt's requests are over. Rejects when `signal` aborts (the attempt then runs unlimited:
   * it only writes its fenced or stopped end).
   */
  async acquire(key: string, signal: AbortSignal): Promise<{ waitedMs: number; release: () => void }> {
    const asked = this.clock.now();
    const lane = this.laneOf(key);
    const turn = lane.queue.then(() => this.admit(key, lane, signal));
    lane.queue = turn.catch(() => {});
    await turn;
    let released = false;
    return {
      waitedMs: this.clock.now() - asked,
      release: () => {
        if (released) return;
        released = true;
        lane.inFlight--;
        lane.wakeAll();
      },
    };
  }

  private laneOf(key: string): Lane {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = new Lane()));
    return lane;
  }

  /** The head of the lane's queue: waits until both bounds allow one more start, then takes it. */
  private async admit(key: string, lane: Lane, signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      const limit = Object.hasOwn(this.limits, key) ? this.limits[key]! : { parallel: null, rate: null };
      if (limit.parallel !== null && lane.inFlight >= limit.parallel) {
        await lane.freed(signal);
        continue;
      }
      const now = this.clock.now();
      if (limit.rate !== null) {
        const windowStart = now - limit.rate.perMs;
        while (lane.starts.length > 0 && lane.starts[0]! <= windowStart) lane.starts.shift();
        if (lane.starts.length >= limit.rate.count) {
          await this.clock.sleep(lane.starts[0]! - windowStart, signal);
          continue;
        }
      }
      lane.inFlight++;
      lane.starts.push(now);
      return;
    }
  }
}

class Lane {
  inFlight = 0;
  /** Start instants within the current rate window, oldest first. */
  starts: number[] = [];
  /** Acquisitions chain here so that they are admitted in order. */
  queue: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];

  freed(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      this.waiters.push(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
